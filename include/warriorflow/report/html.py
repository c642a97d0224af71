# ruff: noqa: E501 - the HTML template keeps one table row per line
"""The report page: one self-contained HTML file (inline CSS, no scripts, no external assets) that shows the
figures by relative file name and the numbers behind them as tables."""

from __future__ import annotations

import re

import jinja2
from markupsafe import Markup, escape

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>warriorflow flywheel report</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1rem 1.5rem 3rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta { color: #666; font-size: .9rem; }
nav a { margin-right: .8rem; font-size: .9rem; }
img { max-width: 100%; height: auto; display: block; margin: .6rem 0; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.empty { background: #f6f6f6; border: 1px dashed #bbb; padding: .8rem 1rem; color: #555; }
.kpi { display: inline-block; margin-right: 1.5rem; } .kpi b { font-size: 1.3rem; }
</style>
</head>
<body>
<h1>warriorflow flywheel report</h1>
<p class="meta">Generated {{ generated_at }} UTC from <code>{{ store_path }}</code> (schema v{{ d.overview.schema_version }},
settings <code>{{ settings_name }}</code>).</p>
<nav>{% for id, title in sections %}<a href="#{{ id }}">{{ title }}</a>{% endfor %}</nav>

<h2 id="overview">Overview</h2>
<div>{% for name, n in d.overview.tables.items() %}<span class="kpi">{{ name.replace('_', ' ') }} <b>{{ n }}</b></span>{% endfor %}</div>
{% if d.overview.instructions_by_status %}
<table><tr><th>instruction status</th><th>n</th></tr>
{% for s, n in d.overview.instructions_by_status.items() %}<tr><td>{{ s }}</td><td class="n">{{ n }}</td></tr>{% endfor %}
</table>{% endif %}

<h2 id="winrates">Pairwise win rates</h2>
{% if figs.win_rates %}<img src="{{ figs.win_rates }}" alt="pairwise win-rate heatmap of the experts">
<table><tr><th>expert \ opponent</th>{% for e in d.win_rates.experts %}<th>{{ e }}</th>{% endfor %}</tr>
{% for e in d.win_rates.experts %}{% set i = loop.index0 %}<tr><th>{{ e }}</th>
{% for r in d.win_rates.rates[i] %}<td class="n">{% if r is none %}–{% else %}{{ pct(r) }} (n={{ d.win_rates.counts[i][loop.index0] }}){% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>
{% else %}<p class="empty">No battles fought yet: run <code>warriorflow battle</code>.</p>{% endif %}

<h2 id="ratings">Ratings</h2>
{% if figs.elo %}<img src="{{ figs.elo }}" alt="Elo over time">{% endif %}
{% if figs.bt %}<img src="{{ figs.bt }}" alt="Bradley-Terry ratings with bootstrap confidence bands">{% endif %}
{% if d.bt.versions %}
<table><tr><th>expert</th><th>Elo</th><th>Bradley-Terry</th><th>95% CI</th><th>BT (style-controlled)</th><th>95% CI</th><th>battles</th></tr>
{% for row in latest_ratings %}<tr><td>{{ row.expert }}</td><td class="n">{{ num(row.elo) }}</td><td class="n">{{ num(row.bt) }}</td>
<td class="n">{% if row.lo is none %}–{% else %}[{{ num(row.lo) }}, {{ num(row.hi) }}]{% endif %}</td><td class="n">{{ num(row.bt_style) }}</td>
<td class="n">{% if row.style_lo is none %}–{% else %}[{{ num(row.style_lo) }}, {{ num(row.style_hi) }}]{% endif %}</td><td class="n">{{ row.n_battles }}</td></tr>{% endfor %}
</table>
{% if d.bt_style.versions %}<p class="meta">BT (style-controlled): Bradley-Terry with the answers' length, headers, list items and bold text held fixed (arena-hard-auto's style control).{% if d.style.line %}
Style effects: {{ d.style.line }} of the normalised difference to the opponent's answer.{% endif %}</p>{% endif %}
<p class="meta">Latest rating version <code>{{ d.bt.versions[-1].rating_version }}</code> ({{ d.bt.versions[-1].computed_at }}); {{ d.bt.versions|length }} versions in all.</p>
{% elif not d.elo.versions %}<p class="empty">No ratings yet: ratings are computed by <code>warriorflow rate</code> after battles.</p>{% endif %}

<h2 id="balance">Attack / defence balance</h2>
{% if figs.balance %}<img src="{{ figs.balance }}" alt="attacks and defences per expert">
<table><tr><th>expert</th><th>attacks</th><th>defences</th></tr>
{% for r in d.balance %}<tr><td>{{ r.expert }}</td><td class="n">{{ r.attacks }}</td><td class="n">{{ r.defences }}</td></tr>{% endfor %}
</table>{% else %}<p class="empty">No battles planned yet.</p>{% endif %}

<h2 id="judges">Judge quality</h2>
{% if figs.judges %}<img src="{{ figs.judges }}" alt="position bias, invalid-vote rate and agreement per judge">
<p><span class="kpi">Fleiss' κ <b>{{ num(d.judges.fleiss_kappa, 3) }}</b></span>
<span class="kpi">items <b>{{ d.judges.kappa_items }}</b></span>
<span class="kpi">votes <b>{{ d.judges.votes }}</b></span>
<span class="kpi">invalid-vote rate <b>{{ pct(d.judges.invalid_vote_rate) }}</b></span></p>
<table><tr><th>judge</th><th>votes</th><th>invalid rate</th><th>first-position wins</th><th>agreement</th></tr>
{% for j in d.judges.judges %}<tr><td>{{ j.judge }}</td><td class="n">{{ j.votes }}</td><td class="n">{{ pct(j.invalid_rate) }}</td>
<td class="n">{{ pct(j.position_bias) }}</td><td class="n">{{ pct(j.agreement) }}</td></tr>{% endfor %}
</table>
<p class="meta">κ: each fought battle is an item, each judge's effective vote (attacker, defender, tie) a rating;
invalid votes are left out, battles with fewer than two ratings skipped. First-position wins: the share of a judge's
decisive verdicts that went to the answer shown first (0.5 is unbiased).</p>
<p><span class="kpi">decisive battles <b>{{ d.judges.decisive_battles }} / {{ d.judges.battles }}</b></span>
<span class="kpi">probabilistic votes <b>{{ d.judges.probabilistic_votes }}</b></span>
<span class="kpi">discrete votes <b>{{ d.judges.discrete_votes }}</b></span>
<span class="kpi">execution votes <b>{{ d.judges.execution_votes }}</b></span></p>
{% else %}<p class="empty">No votes yet.</p>{% endif %}

<h3 id="calibration">Judge calibration</h3>
{% if d.calibration.rows %}
<table><tr><th>judge</th><th>pairs</th><th>accuracy</th><th>ties</th><th>flips between orders</th><th>first position</th><th>decisive</th><th>precision</th></tr>
{% for c in d.calibration.rows %}<tr><td>{% if c.judge == 'panel' %}<b>panel</b>{% else %}{{ c.judge }}{% endif %}</td><td class="n">{{ c.pairs }}</td>
<td class="n">{{ pct(c.accuracy) }}</td><td class="n">{{ pct(c.tie_rate) }}</td><td class="n">{{ pct(c.flip_rate) }}</td>
<td class="n">{{ pct(c.first_position_share) }}</td><td class="n">{{ pct(c.decisive_rate) }}</td><td class="n">{{ pct(c.precision) }}</td></tr>{% endfor %}
</table>
<p class="meta">Latest <code>warriorflow judges calibrate</code> ({{ d.calibration.rows[0].created_at }}) on
<code>{{ d.calibration.rows[0].pairs_source }}</code>: each judge saw every labeled pair in both orders through the
battle path. Accuracy: the effective vote equals the label; flips: the two one-order verdicts disagree.</p>
{% else %}<p class="empty">No calibration yet: run <code>warriorflow judges make-pairs</code> then
<code>warriorflow judges calibrate</code>.</p>{% endif %}

<h2 id="difficulty">Difficulty of mined instructions</h2>
{% if figs.difficulty %}<img src="{{ figs.difficulty }}" alt="difficulty distribution by level">
<table><tr><th>level</th><th>instructions</th></tr>
{% for name, n in d.difficulty.levels.items() %}<tr><td>{{ name }}</td><td class="n">{{ n }}</td></tr>{% endfor %}
</table>{% else %}<p class="empty">No instruction has been scored yet: run <code>warriorflow score</code>.</p>{% endif %}

<h2 id="categories">Task categories</h2>
{% if figs.categories %}<img src="{{ figs.categories }}" alt="task-category mix">
<table><tr><th>miner</th>{% for c in d.categories.categories %}<th>{{ c }}</th>{% endfor %}<th>invalid</th></tr>
{% for miner, counts in d.categories.by_miner.items() %}<tr><td>{{ miner }}</td>
{% for c in d.categories.categories %}<td class="n">{{ counts.get(c, 0) }}</td>{% endfor %}<td class="n">{{ counts.get('invalid', 0) }}</td></tr>{% endfor %}
</table>{% else %}<p class="empty">No instruction has been tagged yet: run <code>warriorflow tag</code>.</p>{% endif %}

<h2 id="drops">Drop reasons</h2>
{% if figs.drop_reasons %}<img src="{{ figs.drop_reasons }}" alt="drop reasons per stage">
<table><tr><th>stage</th><th>reason</th><th>n</th></tr>
{% for r in d.drop_reasons %}<tr><td>{{ r.stage }}</td><td>{{ r.reason }}</td><td class="n">{{ r.n }}</td></tr>{% endfor %}
</table>{% else %}<p class="empty">Nothing dropped or quarantined yet.</p>{% endif %}

<h2 id="overlap">Overlap with the evaluation sets</h2>
{% if figs.overlap %}<img src="{{ figs.overlap }}" alt="n-gram overlap histogram per benchmark">
<table><tr><th>benchmark</th><th>checked</th><th>mean overlap</th><th>max overlap</th><th>contaminated</th></tr>
{% for r in d.overlap.summary %}<tr><td>{{ r.benchmark }}</td><td class="n">{{ r.checked }}</td><td class="n">{{ num(r.mean_overlap, 4) }}</td>
<td class="n">{{ num(r.max_overlap, 4) }}</td><td class="n">{{ r.contaminated }}</td></tr>{% endfor %}
</table>{% else %}<p class="empty">No decontamination check has run yet.</p>{% endif %}

<h2 id="retrains">Snapshots and retrains</h2>
{% set r = d.retrains %}
{% if not r.snapshots and not r.training_runs and not r.eval_results and not r.decisions %}
<p class="empty">No retrain yet: the retrain DAG snapshots the gold data, trains and evaluates once
<code>flywheel.min_new_gold</code> new gold examples have accumulated.</p>
{% else %}
{% if r.latest_snapshot %}<h3>Latest snapshot</h3>{{ table([r.latest_snapshot]) }}{% else %}<p class="empty">No snapshot yet.</p>{% endif %}
{% if figs.retrains %}<img src="{{ figs.retrains }}" alt="model scores across retrains">{% endif %}
{% if r.decisions %}<h3>Promotion decisions</h3>
<p>Promoted only when a one-sided paired test over the problems both models were evaluated on is significant and the mean delta is above zero (<code>evaluation.promotion</code>).</p>
<table><tr><th>candidate</th><th>compared with</th><th>verdict</th><th>test</th><th>statistic</th><th>p-value</th><th>alpha</th><th>problems paired</th><th>evidence</th><th>mean delta</th><th>reasons</th><th>decided</th></tr>
{% for x in r.decisions %}<tr><td>{{ x.candidate }}</td><td>{{ x.previous or '–' }}</td><td>{{ 'promoted' if x.promoted else 'not promoted' }}</td><td>{{ x.test or '–' }}</td><td class="n">{{ num(x.statistic, 4) }}</td><td class="n">{{ '–' if x.p_value is none else '%.4g'|format(x.p_value) }}</td><td class="n">{{ x.alpha if x.alpha is not none else '–' }}</td><td class="n">{{ x.n_paired if x.n_paired is not none else '–' }}</td>
<td>{% if x.b is not none %}candidate-only {{ x.b }}, previous-only {{ x.c }}{% elif x.ci %}CI [{{ '%+.4f'|format(x.ci[0]) }}, {{ '%+.4f'|format(x.ci[1]) }}]{% else %}–{% endif %}</td><td class="n">{{ num(x.mean_delta, 4) }}</td><td>{{ x.reasons|join('; ') }}</td><td>{{ x.decided_at }}</td></tr>{% endfor %}
</table>{% endif %}
{% if d.get('champion') %}<h3>The champion in the arena</h3>
<p>The promoted model battles the experts it learned from (<code>flywheel.champion_joins_arena</code>): its ratings per rating version.</p>
<table><tr><th>rating version</th><th>computed</th><th>champion run</th><th>Elo</th><th>Bradley-Terry</th><th>battles</th></tr>
{% for x in d.get('champion') %}<tr><td>{{ x.rating_version }}</td><td>{{ x.computed_at }}</td><td>{{ x.champion_run or '–' }}</td><td class="n">{{ num(x.elo, 1) }}</td><td class="n">{{ num(x.bt, 1) }}</td><td class="n">{{ x.n_battles if x.n_battles is not none else '–' }}</td></tr>{% endfor %}
</table>{% endif %}
{% if r.eval_results %}<h3>Evaluation results</h3>{{ table(r.eval_results) }}{% endif %}
{% if r.training_runs %}<h3>Training runs</h3>{{ table(r.training_runs) }}{% endif %}
{% if r.snapshots|length > 1 %}<h3>All snapshots</h3>{{ table(r.snapshots) }}{% endif %}
{% endif %}
</body>
</html>
"""

SECTIONS = [("overview", "Overview"), ("winrates", "Win rates"), ("ratings", "Ratings"), ("balance", "Balance"),
            ("judges", "Judges"), ("difficulty", "Difficulty"), ("categories", "Categories"), ("drops", "Drops"),
            ("overlap", "Overlap"), ("retrains", "Retrains")]


_HASH = re.compile(r"[0-9a-f]{40,}")


def _num(x, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    text = "–" if v is None else str(v)
    if _HASH.fullmatch(text):
        return text[:12] + "…"
    return text if len(text) <= 80 else text[:77] + "..."


def _table(rows: list[dict]):
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return Markup(f"<table><tr>{head}</tr>{body}</table>")


def latest_ratings(d: dict) -> list[dict]:
    """Per expert: Elo, BT and style-controlled BT (with CIs) of the latest version of each, best BT first."""
    def last(series: dict) -> dict:
        return {e: pts[-1] for e, pts in series.items() if pts}

    elo, bt = last(d["elo"]["series"]), last(d["bt"]["series"])
    style = last(d["bt_style"]["series"]) if "bt_style" in d else {}
    rows = [{"expert": e, "elo": elo.get(e, {}).get("rating"), "bt": bt.get(e, {}).get("rating"),
             "lo": bt.get(e, {}).get("lo"), "hi": bt.get(e, {}).get("hi"),
             "bt_style": style.get(e, {}).get("rating"), "style_lo": style.get(e, {}).get("lo"),
             "style_hi": style.get(e, {}).get("hi"),
             "n_battles": (bt.get(e) or elo.get(e) or {}).get("n_battles")} for e in sorted(set(elo) | set(bt))]
    return sorted(rows, key=lambda r: -(r["bt"] if r["bt"] is not None else float("-inf")))


def render(data: dict, figs: dict[str, str], *, generated_at: str, store_path: str, settings_name: str) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(num=_num, pct=_pct, table=_table)
    figs_all = {key: figs.get(key) for key in ("win_rates", "elo", "bt", "difficulty", "categories", "drop_reasons",
                                               "overlap", "judges", "balance", "retrains")}
    return env.from_string(TEMPLATE).render(d=data, figs=figs_all, sections=SECTIONS, generated_at=generated_at,
                                            store_path=store_path, settings_name=settings_name,
                                            latest_ratings=latest_ratings(data))
