/** The replay as a self-contained HTML page: per-job tables and training curves (inline SVG). */
import { lineChart } from '../report/charts.js';
import { partyLabel, type ReplayReport } from './replay.js';

const esc = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export async function replayReportHtml(report: ReplayReport, ledgerDir: string): Promise<string> {
  const sections: string[] = [];
  for (const job of report.jobs) {
    // Horizontal rounds carry a training loss and a validation AUC; vertical epochs a validation AUC and KS.
    // A vertical-boost job's rounds are its trees, each with the validation AUC after it.
    const trees = job.rounds.some((r) => r.purpose === 'tree');
    const vertical = trees || job.rounds.some((r) => r.purpose === 'epoch');
    const unit = trees ? 'tree' : vertical ? 'epoch' : 'round';
    const training = job.rounds.filter((r) => r.purpose === (vertical ? unit : 'update'));
    const points = (value: (r: (typeof training)[number]) => number | null | undefined) =>
      training.flatMap((r) => {
        const y = value(r);
        return y === null || y === undefined || !Number.isFinite(y) ? [] : [{ x: r.round, y }];
      });
    const charts = vertical
      ? [
          await lineChart(`Validation AUC per ${unit} (guest's validation rows)`, unit, 'AUC', [{ name: 'validation AUC', points: points((r) => r.validationAuc) }]),
          await lineChart('Validation KS per epoch', unit, 'KS', [{ name: 'validation KS', points: points((r) => r.validationKs) }]),
        ]
      : [
          await lineChart('Training loss (sample-weighted)', unit, 'log-loss', [{ name: 'train loss', points: points((r) => r.trainLoss) }]),
          await lineChart('Validation AUC (sample-weighted over participants)', unit, 'AUC', [{ name: 'validation AUC', points: points((r) => r.validationAuc) }]),
        ];
    const rows = job.rounds
      .map(
        (r) =>
          `<tr><td>${r.round}</td><td>${esc(r.purpose)}</td><td>${r.contributors.map((c) => esc(partyLabel(r, c))).join(', ')}</td>` +
          `<td>${(vertical ? r.validationAuc : r.trainLoss)?.toFixed(4) ?? '-'}</td><td>${(vertical ? r.validationKs : r.validationAuc)?.toFixed(4) ?? '-'}</td>` +
          `<td class="${r.sumOk ? 'ok' : 'bad'}">${r.sumOk ? 'OK' : 'BAD'}</td><td class="${r.modelOk === false ? 'bad' : 'ok'}">${r.modelOk === null ? '-' : r.modelOk ? 'OK' : 'BAD'}</td></tr>`,
      )
      .join('\n');
    sections.push(`<section>
<h2>Job ${esc(job.jobId)}: ${esc(job.name)}</h2>
<p>Purpose: ${esc(job.purpose)}<br>Submitted by ${esc(job.submitter)}; ended ${esc(job.state)}.<br>
Published model: <code>${esc(job.publishedModel ?? 'none')}</code> — ${job.publishedModelOk ? `<span class="ok">${trees ? "lists the kept trees of the record and commits to every party's part" : vertical ? 'commits to the parts every party kept from the logged epochs' : 'equals the model the logged rounds produce'}</span>` : '<span class="bad">not verified</span>'}</p>
<div class="charts">${charts.map((c) => `<figure>${c}</figure>`).join('')}</div>
<table><thead><tr><th>${unit}</th><th>step</th><th>${vertical ? 'parties (role)' : 'participants (training rows)'}</th><th>${vertical ? 'val AUC' : 'loss'}</th><th>${vertical ? 'val KS' : 'val AUC'}</th><th>${vertical ? 'messages' : 'sum'}</th><th>${trees ? 'kept' : vertical ? 'weights' : 'model'}</th></tr></thead>
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
${report.notReplayed.length ? `<section><h2>Jobs with nothing to replay</h2><ul>${report.notReplayed.map((j) => `<li>${esc(j.jobId)} (${esc(j.kind)}): ${esc(j.what)}</li>`).join('')}</ul></section>` : ''}
</body></html>
`;
}
