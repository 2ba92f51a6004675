#!/usr/bin/env node
/**
 * Renders the Markdown and SVG of a result again from its JSON (after a change to lib/report.js):
 *   node bench/render.js [bench/results/latest.json]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderMarkdown, renderSvg } from './lib/report.js';

const file = process.argv[2] ?? new URL('./results/latest.json', import.meta.url).pathname;
if (!file.endsWith('.json')) throw new Error('expects a results .json file');
const result = JSON.parse(readFileSync(file, 'utf8'));
writeFileSync(file.replace(/\.json$/, '.md'), renderMarkdown(result));
writeFileSync(file.replace(/\.json$/, '.svg'), renderSvg(result));
console.log(`rendered ${file.replace(/\.json$/, '.{md,svg}')}`);
