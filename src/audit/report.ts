/** The replay as a self-contained HTML page: per-job tables and training curves (inline SVG). */
import { lineChart } from '../report/charts.js';
import type { ReplayReport } from './replay.js';

const esc = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export async function replayReportHtml(report: ReplayReport, ledgerDir: string): Promise<string> {
  const sections: string[] = [];
  for (const job of report.jobs) {
    const training = job.rounds.filter((r) => r.purpose === 'update');
    const loss = await lineChart('Training loss (sample-weighted)', 'round', 'log-loss', [
      { name: 'train loss', points: training.filter((r) => r.trainLoss !== null).map((r) => ({ x: r.round, y: r.trainLoss! })) },
    ]);
    const auc = await lineChart('Validation AUC (sample-weighted over participants)', 'round', 'AUC', [
      { name: 'validation AUC', points: training.filter((r) => r.validationAuc !== null).map((r) => ({ x: r.round, y: r.validationAuc! })) },
    ]);
    const rows = job.rounds
      .map(
        (r) =>
          `<tr><td>${r.round}</td><td>${esc(r.purpose)}</td><td>${r.contributors.map((c) => `${esc(c)} (${r.rowsByParty[c]})`).join(', ')}</td>` +
          `<td>${r.trainLoss?.toFixed(4) ?? '-'}</td><td>${r.validationAuc?.toFixed(4) ?? '-'}</td>` +
          `<td class="${r.sumOk ? 'ok' : 'bad'}">${r.sumOk ? 'OK' : 'BAD'}</td><td class="${r.modelOk === false ? 'bad' : 'ok'}">${r.modelOk === null ? '-' : r.modelOk ? 'OK' : 'BAD'}</td></tr>`,
      )
      .join('\n');
    sections.push(`<section>
<h2>Job ${esc(job.jobId)}: ${esc(job.name)}</h2>
<p>Purpose: ${esc(job.purpose)}<br>Submitted by ${esc(job.submitter)}; ended ${esc(job.state)}.<br>
Published model: <code>${esc(job.publishedModel ?? 'none')}</code> — ${job.publishedModelOk ? '<span class="ok">equals the model the logged rounds produce</span>' : '<span class="bad">not verified</span>'}</p>
<div class="charts"><figure>${loss}</figure><figure>${auc}</figure></div>
<table><thead><tr><th>round</th><th>step</th><th>participants (training rows)</th><th>loss</th><th>val AUC</th><th>sum</th><th>model</th></tr></thead>
<tbody>${rows}</tbody></table>
${job.failures.length ? `<ul class="bad">${job.failures.map((f) => `<li>${esc(f)}</li>`).join('')}</ul>` : ''}
</section>`);
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedcredit audit replay</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.ok{color:#176b2c}.bad{color:#b00020;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}code{font-size:12px}</style></head>
<body><h1>Audit replay ${report.ok ? '<span class="ok">passed</span>' : '<span class="bad">FAILED</span>'}</h1>
<p>Ledger: <code>${esc(ledgerDir)}</code>. Generated ${new Date().toISOString()} by fedcredit, from the record alone (no raw data, no secret key).</p>
${sections.join('\n')}
</body></html>
`;
}
