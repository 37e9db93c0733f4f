"""The benchmark suite's one entry point: `python -m bench [--quick] [--only NAME ...]`.

Each measurement runs in its own Python process (clean CPU and RSS accounting); the loopback HTTP
server for scenario 1 runs in another. Prints a table on stdout and writes
`bench/results/<timestamp>.json` (and `latest.json`) with machine info and every raw figure.
Benchmarks never fail on timing: the exit code is non-zero only when a scenario crashed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, loopserver, machine_info, median, ratio, run_worker

RESULTS = ROOT / "bench" / "results"
SCENARIOS = [
    "engine_scale",
    "render",
    "startup",
    "alert_store",
    "fault_page",
    "memory",
    "quality_score",
    "quality_tail",
    "quality_memory",
    "serve_log",
    "quality_alarms",
    "detection",
]


def plan(quick: bool, repeats: int | None) -> dict[str, Any]:
    if quick:
        return {
            "engine_scale": {"ns": [20], "duration": 2.0, "warmup": 0.5, "repeats": repeats or 1},
            "render": {"sizes": [10], "seconds": 2.0, "warmup": 0.5, "bare": True, "filter_at": 10},
            "startup": {"runs": 1},
            "alert_store": {"events": 20_000, "api_events": 200, "repeats": 20},
            "fault_page": {"trials": 2, "interval": 1.0, "max_seconds": 30},
            "memory": {"endpoints": 100, "hours": 0.05, "max_seconds": 10},
            "quality_score": {"rows": 10_000, "features": 20, "repeats": 3},
            "quality_tail": {"rate": 1000, "seconds": 3},
            "quality_memory": {"memory_rows": 5_000},
            "serve_log": {"requests": 100},
            "quality_alarms": {"hours": 0.3, "trials": 1},
            "detection": {"quick": True},
        }
    return {
        "engine_scale": {"ns": [100, 500, 1000], "duration": 30.0, "warmup": 2.0, "repeats": repeats or 3},
        "render": {
            "sizes": [10, 200, 1000, 10_000],
            "seconds": 60.0,
            "warmup": 8.0,
            "bare": True,
            "filter_at": 10_000,
        },
        "startup": {"runs": 7},
        "alert_store": {"events": 1_000_000, "api_events": 5_000, "repeats": 300},
        "fault_page": {"trials": 20, "interval": 1.0, "max_seconds": 300},
        "memory": {"endpoints": 1000, "hours": 24.0, "max_seconds": 420},
        "quality_score": {"rows": 10_000, "features": 20, "repeats": 50},
        "quality_tail": {"rate": 1000, "seconds": 120},
        "quality_memory": {"memory_rows": 500_000},
        "serve_log": {"requests": 2000},
        "quality_alarms": {"hours": 2.0, "trials": 5},
        "detection": {"quick": False},
    }


# -- scenarios ---------------------------------------------------------------------------------------
def s_engine_scale(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": [], "by_n": {}}
    modes = ["engine", "aiohttp", "httpx"]
    with loopserver() as port:
        for n in p["ns"]:
            for rep in range(p["repeats"]):
                for mode in modes:  # interleaved, so load changes on the shared machine hit all alike
                    args = [
                        "--mode",
                        mode,
                        "--n",
                        str(n),
                        "--duration",
                        str(p["duration"]),
                        "--warmup",
                        str(p["warmup"]),
                        "--port",
                        str(port),
                    ]
                    r = run_worker("bench.engine_scale", args, timeout=p["duration"] * 4 + 60)
                    r["repeat"] = rep
                    out["runs"].append(r)
                    print(
                        f"  engine_scale n={n} {mode:8s} rep={rep}: {r['probes_per_s']:.0f}/s "
                        f"lag p99 {r['lag_p99_ms']:.1f} ms, {r['cpu_s_per_1000']:.3f} cpu-s/1000",
                        file=sys.stderr,
                    )
            summary = {}
            for mode in modes:
                runs = [r for r in out["runs"] if r["n"] == n and r["mode"] == mode]
                summary[mode] = {
                    key: median([r[key] for r in runs])
                    for key in (
                        "probes_per_s",
                        "done_ratio",
                        "lag_p50_ms",
                        "lag_p99_ms",
                        "cpu_s_per_1000",
                        "cpu_share",
                        "peak_rss_mb",
                    )
                }
            summary["cpu_ratio_engine_vs_aiohttp"] = ratio(
                summary["engine"]["cpu_s_per_1000"], summary["aiohttp"]["cpu_s_per_1000"]
            )
            # per-repeat ratios (same moment, same load), median of them
            per_rep = []
            for rep in range(p["repeats"]):
                e = [r for r in out["runs"] if r["n"] == n and r["mode"] == "engine" and r["repeat"] == rep]
                a = [r for r in out["runs"] if r["n"] == n and r["mode"] == "aiohttp" and r["repeat"] == rep]
                if e and a:
                    per_rep.append(ratio(e[0]["cpu_s_per_1000"], a[0]["cpu_s_per_1000"]))
            summary["cpu_ratio_median_of_repeats"] = median(per_rep)
            out["by_n"][str(n)] = summary
    return out


def flags(p: dict[str, Any], *keys: str) -> list[str]:
    """`--key value` arguments for a worker, from the scenario's parameters."""
    return [arg for key in keys for arg in (f"--{key.replace('_', '-')}", str(p[key]))]


def s_render(p: dict[str, Any]) -> dict[str, Any]:
    """The overview beside a bare DataTable fed the same rows (`--mode bare`), one after the other."""
    out = {}
    for n in p["sizes"]:
        keys = ["--filter-keys", "0042"] if n == p["filter_at"] else []
        out[str(n)] = run_worker(
            "bench.render",
            ["--endpoints", str(n), *flags(p, "seconds", "warmup"), *keys],
            timeout=p["seconds"] + 180,
        )
        if p["bare"] and isinstance(out[str(n)], dict):
            out[str(n)]["bare"] = run_worker(
                "bench.render",
                ["--mode", "bare", "--endpoints", str(n), *flags(p, "seconds", "warmup")],
                timeout=p["seconds"] + 180,
            )
    return out


def s_startup(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker("bench.startup", flags(p, "runs"), timeout=60 + 25 * p["runs"])


def s_alert_store(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker(
        "bench.alert_store",
        flags(p, "events", "api_events", "repeats"),
        timeout=900,
    )


def s_fault_page(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker(
        "bench.fault_page",
        flags(p, "trials", "interval", "max_seconds"),
        timeout=p["max_seconds"] + 90,
    )


def s_memory(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker(
        "bench.memory",
        flags(p, "endpoints", "hours", "max_seconds"),
        timeout=p["max_seconds"] + 120,
    )


def s_quality_score(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker("bench.quality_score", flags(p, "rows", "features", "repeats"), timeout=600)


def s_quality_tail(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker("bench.quality_tail", flags(p, "rate", "seconds"), timeout=p["seconds"] * 3 + 300)


def s_quality_memory(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker("bench.quality_tail", flags(p, "memory_rows"), timeout=1800)


def s_serve_log(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker("bench.serve_log", flags(p, "requests"), timeout=600 + p["requests"])


def s_quality_alarms(p: dict[str, Any]) -> dict[str, Any]:
    return run_worker("bench.quality_alarms", flags(p, "hours", "trials"), timeout=600 + 300 * p["hours"])


def s_detection(p: dict[str, Any]) -> dict[str, Any]:
    # The full run scores 100 seeds of every scenario (about ten minutes on two cores); --quick two.
    return run_worker("bench.detection", ["--emit", *(["--quick"] if p["quick"] else [])], timeout=3600)


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "engine_scale": s_engine_scale,
    "render": s_render,
    "startup": s_startup,
    "alert_store": s_alert_store,
    "fault_page": s_fault_page,
    "memory": s_memory,
    "quality_score": s_quality_score,
    "quality_tail": s_quality_tail,
    "quality_memory": s_quality_memory,
    "serve_log": s_serve_log,
    "quality_alarms": s_quality_alarms,
    "detection": s_detection,
}


# -- targets and the table ---------------------------------------------------------------------------
def rows(results: dict[str, Any], quick: bool) -> list[tuple[str, str, str, str, str]]:
    """(scenario, figure, value, baseline / target, verdict). Verdicts are information, never failures."""
    out: list[tuple[str, str, str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "-" if ok is None else ("holds" if ok else "FAILS")

    def f(value: Any, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    s1 = results.get("engine_scale", {})
    for n, s in s1.get("by_n", {}).items():
        e, a, h = s["engine"], s["aiohttp"], s["httpx"]
        big = n == "1000"
        out.append(
            (
                f"1 engine N={n}",
                "probes/s (scheduled)",
                f"{f(e['probes_per_s'], '.0f')} ({n})",
                f"aiohttp {f(a['probes_per_s'], '.0f')}, httpx {f(h['probes_per_s'], '.0f')}",
                "-",
            )
        )
        out.append(
            (
                f"1 engine N={n}",
                "done / scheduled",
                f(e["done_ratio"], ".2%"),
                f"aiohttp {f(a['done_ratio'], '.2%')}, httpx {f(h['done_ratio'], '.2%')}; target >= 99%",
                verdict(e["done_ratio"] >= 0.99) if big else "-",
            )
        )
        out.append(
            (
                f"1 engine N={n}",
                "lag p50 / p99 ms",
                f"{f(e['lag_p50_ms'], '.1f')} / {f(e['lag_p99_ms'], '.1f')}",
                f"aiohttp {f(a['lag_p99_ms'], '.1f')}, httpx {f(h['lag_p99_ms'], '.0f')} (p99); target < 100",
                verdict(e["lag_p99_ms"] < 100) if big else "-",
            )
        )
        out.append(
            (
                f"1 engine N={n}",
                "CPU s / 1000 probes",
                f(e["cpu_s_per_1000"], ".3f"),
                f"aiohttp {f(a['cpu_s_per_1000'], '.3f')} (x{f(s['cpu_ratio_median_of_repeats'], '.2f')}), "
                f"httpx {f(h['cpu_s_per_1000'], '.3f')}; target <= x1.5",
                verdict((s["cpu_ratio_median_of_repeats"] or 99) <= 1.5) if big else "-",
            )
        )
        out.append(
            (
                f"1 engine N={n}",
                "peak RSS MB",
                f(e["peak_rss_mb"], ".0f"),
                f"aiohttp {f(a['peak_rss_mb'], '.0f')}, httpx {f(h['peak_rss_mb'], '.0f')}",
                "-",
            )
        )
    for n, r in results.get("render", {}).items():
        if not isinstance(r, dict) or "cpu_share" not in r:
            continue
        bare = r.get("bare") if isinstance(r.get("bare"), dict) else None
        share = ratio(r["cpu_share"], bare["cpu_share"]) if bare else None
        target = 1.0 if int(n) >= 1000 else 1.2
        out.append(
            (
                f"2 render N={n}",
                "CPU share of one core",
                f(r["cpu_share"], ".1%"),
                f"bare DataTable {f(bare['cpu_share'], '.1%')} (x{f(share, '.2f')}), target <= x{target}"
                if bare
                else "no bare baseline in this run",
                verdict(share <= target) if share is not None and not quick else "-",
            )
        )
        if "filter_max_ms" in r:
            out.append(
                (
                    f"2 render N={n}",
                    "filter keystroke → painted, max ms",
                    f(r["filter_max_ms"], ".0f"),
                    "target < 100 ms",
                    verdict(r["filter_max_ms"] < 100) if not quick else "-",
                )
            )
        out.append(
            (
                f"2 render N={n}",
                "apply one update p50 / p99 ms",
                f"{f(r['apply_p50_ms'], '.1f')} / {f(r['apply_p99_ms'], '.1f')}",
                f"painted p99 {f(r['painted_p99_ms'], '.1f')} ms",
                "-",
            )
        )
    st = results.get("startup", {})
    if "process_s" in st:
        out.append(
            (
                "3 start-up",
                "spawn -> first frame s",
                f(st["process_s"], ".3f"),
                f"import textual.app {f(st['baseline_import_textual_s'], '.3f')} s; target < 1.0",
                verdict((st["process_s"] or 99) < 1.0),
            )
        )
        out.append(
            (
                "3 start-up",
                "main() -> first frame s",
                f(st["in_process_s"], ".3f"),
                f"python -c pass {f(st['baseline_python_s'], '.3f')} s",
                "-",
            )
        )
    al = results.get("alert_store", {})
    if "bulk_events_per_s" in al:
        out.append(
            (
                "4 alert store",
                f"ingest events/s ({al['events']:,} rows)",
                f(al["bulk_events_per_s"], ",.0f"),
                f"sqlite3 executemany {f(al['sqlite_events_per_s'], ',.0f')}; "
                f"per-op API {f(al['api_events_per_s'], ',.0f')}; target >= 20,000",
                verdict(al["bulk_events_per_s"] >= 20_000),
            )
        )
        out.append(
            (
                "4 alert store",
                "alerts list (100 firing) p50 / p95 ms",
                f"{f(al['list_p50_ms'], '.2f')} / {f(al['list_p95_ms'], '.2f')}",
                "target p95 < 10",
                verdict(al["list_p95_ms"] < 10),
            )
        )
        out.append(
            (
                "4 alert store",
                "alert timeline p50 / p95 ms",
                f"{f(al['timeline_p50_ms'], '.2f')} / {f(al['timeline_p95_ms'], '.2f')}",
                "target p95 < 10",
                verdict(al["timeline_p95_ms"] < 10),
            )
        )
    fp = results.get("fault_page", {})
    if "page_p95_s" in fp:
        ok = fp["page_p95_s"] is not None and fp["page_p95_s"] <= fp["target_s"]
        out.append(
            (
                "5 fault to page",
                f"page p50 / p95 s ({fp['trials']} trials)",
                f"{f(fp['page_p50_s'], '.2f')} / {f(fp['page_p95_s'], '.2f')}",
                f"target p95 <= {fp['target_s']:.1f}",
                verdict(ok),
            )
        )
        ok = fp["resolve_p95_s"] is not None and fp["resolve_p95_s"] <= fp["target_s"]
        out.append(
            (
                "5 fault to page",
                "resolve p50 / p95 s",
                f"{f(fp['resolve_p50_s'], '.2f')} / {f(fp['resolve_p95_s'], '.2f')}",
                f"target p95 <= {fp['target_s']:.1f}",
                verdict(ok),
            )
        )
    mem = results.get("memory", {})
    if "rss_final_mb" in mem:
        ok = mem["rss_peak_mb"] < 300 and mem["levelled_off"] and mem["hours_fed"] >= 24
        out.append(
            (
                "6 memory",
                f"RSS MB after {mem['hours_fed']} h x {mem['endpoints']} endpoints",
                f"{f(mem['rss_final_mb'], '.0f')} (peak {f(mem['rss_peak_mb'], '.0f')})",
                f"start {f(mem['rss_start_mb'], '.0f')}; last-half growth "
                f"{f(mem['rss_growth_last_half_mb'], '.1f')} MB; target < 300, flat",
                verdict(ok) if not quick else "-",
            )
        )
    out += quality_rows(results, quick, verdict, f)
    for name, r in results.items():
        if isinstance(r, dict) and "error" in r:
            out.append((name, "ERROR", r["error"].splitlines()[-1][:80], "", "CRASHED"))
    return out


def quality_rows(
    results: dict[str, Any], quick: bool, verdict: Callable[[bool | None], str], f: Callable[[Any, str], str]
) -> list[tuple[str, str, str, str, str]]:
    out: list[tuple[str, str, str, str, str]] = []
    qs = results.get("quality_score", {})
    if "evaluate" in qs:
        e, s, b = qs["evaluate"], qs["score"], qs["baseline"]
        out.append(
            (
                "7 drift scoring",
                f"{qs['features']} features x {qs['rows']:,} rows, wall / CPU ms (p50)",
                f"{f(e['wall_p50_ms'], '.1f')} / {f(e['cpu_p50_ms'], '.1f')}",
                f"score_window alone {f(s['cpu_p50_ms'], '.1f')} CPU ms; bare scipy "
                f"{f(b['wall_p50_ms'], '.0f')} / {f(b['cpu_p50_ms'], '.0f')}; target < 50",
                verdict(e["wall_p50_ms"] < 50) if not quick else "-",
            )
        )
    qt = results.get("quality_tail", {})
    if "tailer" in qt:
        t = qt["tailer"]
        out.append(
            (
                "8 tail",
                f"CPU share at {qt['rate']:.0f} rows/s (read + fold in)",
                f(t["tail_cpu_share"], ".1%"),
                f"bare read {f(qt['bare']['cpu_share'], '.2%')}, read + json.loads "
                f"{f(qt['bare-parse']['cpu_share'], '.1%')}; target < 5%",
                verdict(t["tail_cpu_share"] < 0.05) if not quick else "-",
            )
        )
        out.append(
            (
                "8 tail",
                "evaluate every 10 s: CPU ms (max)",
                f(t["evaluate_cpu_ms_max"], ".0f"),
                f"{t['evaluations']} evaluations; all-in CPU share {f(t['cpu_share'], '.1%')}",
                "-",
            )
        )
    qm = results.get("quality_memory", {})
    if "tailer" in qm:
        t = qm["tailer"]
        samples = t["rss_samples"]
        half = samples[len(samples) // 2][1] if samples else None
        growth = None if half is None else t["rss_end_mb"] - half
        out.append(
            (
                "8 tail memory",
                f"RSS MB after {t['rows']:,} rows ({qm['log_bytes_on_disk'] / 2**20:.0f} MB kept on disk)",
                f"{f(t['rss_end_mb'], '.0f')} (start {f(t['rss_start_mb'], '.0f')})",
                f"last-half growth {f(growth, '.1f')} MB; target flat",
                verdict(growth is not None and growth < 20) if not quick else "-",
            )
        )
    sl = results.get("serve_log", {})
    if "plain" in sl:
        p, lg = sl["plain"], sl["logging"]
        out.append(
            (
                "9 serve --log-inferences",
                "latency p50 / p99 ms, 5-row requests",
                f"{f(lg['p50_ms'], '.2f')} / {f(lg['p99_ms'], '.1f')}",
                f"without the log {f(p['p50_ms'], '.2f')} / {f(p['p99_ms'], '.1f')}",
                "-",
            )
        )
        out.append(
            (
                "9 serve --log-inferences",
                "requests/s, 8 concurrent clients",
                f(lg["rps"], ".0f"),
                f"without the log {f(p['rps'], '.0f')}; "
                f"rows logged {sl['rows_logged']:,} of {sl['rows_expected']:,}",
                "-",
            )
        )
        out.append(
            (
                "9 serve --log-inferences",
                "server CPU ms per request (its writer thread included)",
                f(lg["cpu_ms_per_request"], ".2f"),
                f"without the log {f(p['cpu_ms_per_request'], '.2f')}",
                "-",
            )
        )
    qa = results.get("quality_alarms", {})
    for key, r in qa.items():
        if not isinstance(r, dict) or "evaluations" not in r:
            continue
        delay = f(r["all_features_delay_s_median"], ".0f")
        out.append(
            (
                f"10 alarms {key}",
                f"false alarms over {qa['hours']:g} h clean / detection delay s",
                f"{r['alarm_evaluations']} of {r['evaluations']} / {delay}",
                f"max {f(r['all_features_delay_s_max'], '.0f')} s over {r['detected_all']} of {qa['trials']} "
                f"trials; dataset drift {f(r['dataset_delay_s_median'], '.0f')} s; "
                f"wrongly named {r['wrongly_named']}",
                "-",
            )
        )
    det = results.get("detection", {})
    if "overall" in det:
        ours, static, sigma = (det["overall"][m] for m in ("adaptive", "static", "3sigma"))
        targets = det.get("targets", {})

        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{v * 100:.1f}%"

        seeds = "2 seeds (quick)" if det.get("quick") else "seeds 1000-1099"
        out.append(
            (
                "11 detection",
                f"recall / false pages per signal-day, {seeds}",
                f"{pct(ours['recall'])} / {f(ours['false_per_day'], '.3f')}",
                f"static {pct(static['recall'])} / {f(static['false_per_day'], '.3f')}; "
                f"3-sigma {pct(sigma['recall'])} / {f(sigma['false_per_day'], '.3f')}; "
                "target >= 95% / <= 0.3",
                verdict(None if quick else all(targets.values())),
            )
        )
        out.append(
            (
                "11 detection",
                "delay p50 / p90, polls",
                f"{f(ours['median_delay'], 'g')} / {f(ours['p90_delay'], 'g')}",
                f"static {f(static['median_delay'], 'g')}; 3-sigma {f(sigma['median_delay'], 'g')}; "
                "target p50 <= 4",
                "-",
            )
        )
    return out


def table(lines: list[tuple[str, str, str, str, str]]) -> str:
    header = ("scenario", "figure", "value", "baseline / target", "target")
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(5)]
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([fmt.format(*header), sep, *(fmt.format(*r) for r in lines)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (< 60 s): proves it runs")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--repeats", type=int, help="scenario 1 repeats per N and mode (default 3)")
    parser.add_argument("--output", type=Path, help="results JSON path (default bench/results/<time>.json)")
    args = parser.parse_args(argv)
    settings = plan(args.quick, args.repeats)
    started = time.time()
    results: dict[str, Any] = {}
    failed = False
    for name in args.only or SCENARIOS:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t = time.monotonic()
        try:
            results[name] = RUNNERS[name](settings[name])
        except Exception:
            failed = True
            results[name] = {"error": traceback.format_exc()}
        results[name]["_seconds"] = round(time.monotonic() - t, 1)
        results[name]["_params"] = settings[name]
    lines = rows(results, args.quick)
    doc = {
        "suite": "mlops-console bench",
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": machine_info(),
        "results": results,
        "table": [
            dict(zip(("scenario", "figure", "value", "baseline_target", "verdict"), r, strict=True))
            for r in lines
        ],
    }
    path = args.output or RESULTS / time.strftime("%Y%m%d-%H%M%S.json", time.localtime(started))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str))
    if args.output is None:
        (RESULTS / ("latest-quick.json" if args.quick else "latest.json")).write_text(path.read_text())
    print(table(lines))
    print(f"\nresults: {path} ({doc['seconds']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
