/**
 * Preloaded with `--import` by `bench/profile.js --heap`: samples every allocation of the process (objects
 * that the GC has already collected included, which `--heap-prof` leaves out), and writes the profile to
 * BENCH_HEAP_PROFILE when the process exits. Summarize it with `node bench/profile.js --summarize-heap FILE`.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_HEAP_PROFILE;
if (file) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.BENCH_HEAP_INTERVAL ?? 1024),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  // An in-process inspector session answers synchronously, so this works inside an 'exit' handler.
  process.on('exit', () => {
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (!err) writeFileSync(file, JSON.stringify(res.profile));
      else console.error(`heap sampling failed: ${err.message}`);
    });
  });
}
