"""The markdown table of a benchmark result, written between markers in docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"

TARGETS = {  # figure -> (comparison, limit): the issue's targets, checked in the table
    "overhead": ("<=", 1.05),
    "speedup": (">=", 4.0),
    "memory": ("<=", 0.5),
    "throughput": (">=", 10.0),
    "help": ("<", 0.3),
    "latency": ("<", 0.050),
    "predict": ("<=", 0.6),
    "process": (">=", 4.0),
}


def _ok(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    op, limit = TARGETS[name]
    good = {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]
    return "yes" if good else "**no**"


def _s(x: float) -> str:
    return f"{x:.3g} s" if x >= 0.1 else f"{x * 1e3:.3g} ms"


def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def _med(d: dict) -> float:
    return d["median"]


def render(result: dict, json_path: Path | str) -> str:
    """The section between the markers: machine, summary table, detail tables."""
    m, b = result["machine"], result["benchmarks"]
    lines = [
        f"Measured {result['started'].replace('T', ' ')} with `{result['command']}` ({result['seconds'].get('total', 0) / 60:.0f} min); "
        f"raw numbers in `{Path(json_path).name}` under `bench/results/`.",
        *[
            f"Re-measured {r['started'].replace('T', ' ')} with `{r['command']}` (load average {r['load_average_at_start']}); "
            "those rows replace the first run's."
            for r in result.get("reruns", [])
        ],
        "",
        f"**Machine**: {m['cpu']}, {m['cores_usable']} cores usable of {m['cores']}, {m['ram_gib']} GiB RAM, GPU: {m['gpu']}; "
        f"{m['os']}; Python {m['python']}, Keras {m['keras']}, JAX {m['jax']} (jaxlib {m['jaxlib']}), "
        f"TensorFlow {m['tensorflow']}, NumPy {m['numpy']}, pandas {m['pandas']}. "
        f"Load average at start {result.get('load_average_at_start')}, at end {result.get('load_average_at_end')} "
        "(the machine is shared: other work slows every figure, and the ratios less than the absolute times).",
        "",
    ]
    if result.get("quick"):
        lines += ["**Quick run (tiny sizes): these figures check that the scripts work and measure nothing.**", ""]
    lines += ["| # | benchmark | measured | target | met |", "|---|---|---|---|---|"]
    rows = []
    if "overhead" in b:
        o = b["overhead"]
        rows.append(
            (
                "1",
                f"overhead: `rnnforecast train` s/epoch / plain `model.fit` on arrays ({o['backend']}, {o['model']}, {o['rows']:,} rows)",
                f"{_s(_med(o['rnnforecast_epoch_seconds']))} / {_s(_med(o['plain_fit_epoch_seconds']))} = **{o['ratio']:.2f}** "
                f"(median of per-round pairs {_med(o['ratio_per_round']):.2f}, range {o['ratio_per_round']['min']:.2f}-"
                f"{o['ratio_per_round']['max']:.2f}; with checkpoint saves: {o['ratio_wall']:.2f})"
                if "ratio_per_round" in o
                else f"(with checkpoint saves: {o['ratio_wall']:.2f})",
                "<= 1.05",
                _ok("overhead", o["ratio"]),
            )
        )
    if "tutorial" in b:
        t = b["tutorial"]
        parts = ", ".join(f"{c} **{v['speedup']:.1f}x**" for c, v in t["cells"].items())
        rows.append(
            (
                "2",
                f"speed-up per epoch: rnnforecast on {t['rnnforecast_backend']} vs the tutorial "
                f"(`timeseries_dataset_from_array`) on {t['tutorial_backend']} ({t['rows']:,} rows; different backends: "
                "row 2b gives the same-backend ratio)",
                parts,
                ">= 4x",
                _ok("speedup", t["min_speedup"]),
            )
        )
    if "process" in b:
        pr = b["process"]
        w = pr["train_process_seconds"]
        rows.append(
            (
                "2b",
                f"whole `rnnforecast train` process (JAX, empty compilation cache) vs the tutorial's `fit` alone "
                f"({pr['tutorial_backend']}), {pr['rows']:,} rows x {pr['features']}, {pr['epochs']} epochs",
                f"{_s(_med(pr['tutorial_fit_seconds']))} / {_s(_med(w['cold']))} = **{pr['ratio_cold']:.2f}x** "
                f"(warm cache {_s(_med(w['warm']))}: {pr['ratio_warm']:.2f}x; same backend, `rnnforecast train` on "
                f"TensorFlow {_s(_med(w['tf']))}: {pr['ratio_same_backend']:.2f}x)",
                ">= 4x",
                _ok("process", pr["ratio_cold"]),
            )
        )
        c = pr["compile_seconds"]
        rows.append(
            (
                "2c",
                "compile cost: first epoch minus the median of the others, JAX compilation cache empty / filled",
                f"**{_s(_med(c['cold']))}** / **{_s(_med(c['warm']))}**",
                "cache helps",
                "yes" if _med(c["warm"]) < _med(c["cold"]) else "**no**",
            )
        )
    if "memory" in b:
        mm = b["memory"]
        rows.append(
            (
                "3",
                f"memory: peak RSS increase over one shuffled pass, {mm['rows']:,} x {mm['features']} float32, input_length {mm['input_length']}",
                f"{_mb(_med(mm['peak_increase_bytes']))} / {_mb(mm['series_bytes'])} = **{mm['ratio']:.2f}x** "
                f"(stacking the windows would take {_mb(mm['materialised_bytes'])})",
                "<= 0.5x",
                _ok("memory", mm["ratio"]),
            )
        )
    if "overhead" in b:
        o = b["overhead"]
        rows.append(
            (
                "3b",
                "window pipeline alone vs the model's consumption in training",
                f"{_med(o['pipeline_windows_per_second']):,.0f} / {o['model_windows_per_second']:,.0f} windows/s = **{o['throughput_ratio']:.0f}x**",
                ">= 10x",
                _ok("throughput", o["throughput_ratio"]),
            )
        )
    if "scaling" in b:
        s = b["scaling"]
        per = ", ".join(f"{int(n):,} rows {_s(_med(v['epoch_seconds']))}" for n, v in s["rows"].items())
        uni = ", ".join(f"{u} units {_s(_med(v['epoch_seconds']))}" for u, v in s["units"].items())
        rows.append(
            (
                "4",
                "scaling: s/epoch vs rows; vs units",
                f"{per} (s per window, largest / smallest: {s['linearity']:.2f}); {uni} at {s['units_at_rows']:,} rows",
                "linear",
                "-",
            )
        )
    if "startup" in b:
        st = b["startup"]
        rows.append(
            (
                "5",
                "start-up: `rnnforecast --help`",
                f"**{_s(_med(st['help']['seconds']))}** (imports pandas: {st['help']['imports']['pandas']})",
                "< 0.3 s",
                _ok("help", _med(st["help"]["seconds"])),
            )
        )
        v = st["validate"]
        rows.append(
            (
                "5b",
                "start-up: `rnnforecast validate configs/weather_lstm.yaml`",
                f"{_s(_med(v['seconds']))}; imports keras/jax/tensorflow: {'**yes**' if v['imports_deep_learning'] else 'none'}",
                "no backend import",
                "yes" if not v["imports_deep_learning"] else "**no**",
            )
        )
    if "prediction" in b:
        p = b["prediction"]
        rows.append(
            (
                "6",
                f"prediction: one forecast, warm, in-process ({p['backend']})",
                f"**{_s(_med(p['warm_forecast_seconds']))}** (first call {_s(p['first_forecast_seconds'])})",
                "< 50 ms",
                _ok("latency", _med(p["warm_forecast_seconds"])),
            )
        )
        seconds, dl = _med(p["predict_command_seconds"]), p.get("predict_imports_deep_learning")
        rows.append(
            (
                "6b",
                "prediction: `rnnforecast predict RUN` end to end",
                f"**{_s(seconds)}**{_cold(p)}; imports keras/jax/tensorflow: "
                f"{'-' if dl is None else '**yes**' if dl else 'none'}",
                "<= 0.6 s, no backend import",
                "**no**" if dl else _ok("predict", seconds),
            )
        )
    lines += [f"| {' | '.join(r)} |" for r in rows]
    lines += _details(b)
    return "\n".join(lines)


def _cold(p: dict) -> str:
    """The predict figure when the package's bytecode is not cached (compiled in every process)."""
    cold, floor = p.get("predict_command_seconds_no_bytecode"), p.get("import_numpy_pandas_seconds")
    parts = [f"{_s(_med(cold))} without cached bytecode"] if cold else []
    parts += [f"floor `import numpy, pandas` {_s(_med(floor))}"] if floor else []
    return f" ({'; '.join(parts)})" if parts else ""


def _details(b: dict) -> list[str]:
    out = []
    if "tutorial" in b:
        t = b["tutorial"]
        out += [
            "",
            f"**Per cell** (s/epoch, {t['windows']['train']:,} training + {t['windows']['val']:,} validation windows, batch 32):",
            "",
            f"| cell | rnnforecast ({t['rnnforecast_backend']}, PyDataset) | tutorial ({t['tutorial_backend']}, tf.data) | speed-up |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {c} | {_s(_med(v['rnnforecast_epoch_seconds']))} | {_s(_med(v['tutorial_epoch_seconds']))} | {v['speedup']:.1f}x |"
            for c, v in t["cells"].items()
        ]
    if "scaling" in b:
        s = b["scaling"]
        out += [
            "",
            f"**Scaling** ({s['backend']}, LSTM, batch 32, train + validation windows per epoch):",
            "",
            "| rows | windows/epoch | s/epoch | us/window |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {int(n):,} | {v['windows']:,} | {_s(_med(v['epoch_seconds']))} | {v['us_per_window']:.1f} |"
            for n, v in s["rows"].items()
        ]
        out += ["", f"| units ({s['units_at_rows']:,} rows) | parameters | s/epoch |", "|---|---|---|"]
        out += [f"| {u} | {v['params']:,} | {_s(_med(v['epoch_seconds']))} |" for u, v in s["units"].items()]
    if "many_series" in b:
        m = b["many_series"]
        out += [
            "",
            f"**Many series** (one global model, `data.series_id`; {m['rows_per_series']:,} rows per series, "
            f"{m['backend']}, LSTM(16), batch 256; peak = the training process's peak RSS; time per window at the "
            f"largest size / the smallest: {m['linearity']:.2f}, 1.0 is linear):",
            "",
            "| series | windows/epoch | s/epoch | us/window | peak memory |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {int(n):,} | {v['windows']:,} | {_s(_med(v['epoch_seconds']))} | {v['us_per_window']:.1f} | "
            f"{_mb(v['peak_rss_bytes'])} |"
            for n, v in m["sizes"].items()
        ]
    if "options" in b:
        o = b["options"]
        out += [
            "",
            f"**Training options** ({o['rows']:,} rows: {o['windows']['train']:,} training + {o['windows']['val']:,} validation windows; "
            "s/epoch includes validation; defaults jit_compile auto, steps_per_execution 1, batch 32):",
            "",
            "| option | JAX s/epoch | JAX vs default | TF s/epoch | TF vs default |",
            "|---|---|---|---|---|",
        ]
        labels = list(dict.fromkeys([*o["jax"], *o["tensorflow"]]))
        for label in labels:
            cells = []
            for be in ("jax", "tensorflow"):
                v = o[be].get(label)
                if v is None:
                    cells += ["-", "-"]
                elif "epoch_seconds" not in v:
                    cells += [f"{v['ms_per_train_step']:.0f} ms per step ({v['note']})", "-"]
                else:
                    cells += [_s(_med(v["epoch_seconds"])), f"{v['vs_default']:.2f}"]
            out.append(f"| {label} | {' | '.join(cells)} |")
    if "memory" in b:
        mm = b["memory"]
        out += [
            "",
            f"**Memory pass**: {mm['windows']:,} windows in {_s(_med(mm['pass_seconds']))} "
            f"({_med(mm['windows_per_second']):,.0f} windows/s of {mm['input_length']} x {mm['features']}, batch {mm['batch_size']}).",
        ]
    return out


def update_docs(docs: Path, result: dict, json_path: Path) -> None:
    """Replace the text between the markers (or append a marked section) with the rendered table."""
    body = f"{START}\n{render(result, json_path)}\n{END}"
    text = docs.read_text() if docs.exists() else "# Benchmarks\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + body + tail
    else:
        text = text.rstrip("\n") + "\n\n" + body + "\n"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text)
