"""Stage 3 of the WHAM! recipe: evaluate a trained model on whole test utterances.

Metrics come from ``asteroid.metrics.get_metrics`` (pb_bss_eval), as in Asteroid's own recipes:
SI-SDR and SDR of every speech source, of the estimate and of the mixture, and their
improvements (SI-SDRi, SDRi); with ``--extra_metrics`` also STOI and PESQ (slow). The
estimates are matched to the speech sources with PIT over the speech outputs only (the noise
output is never matched to a speaker). Also reported: the metrics by quartile of input SNR
(speech-to-noise ratio of the mixture), the parameter count, the real-time factor and, for gated
models, the refinement steps run per mixture; a few separated examples are written. Outputs
``results.json`` and ``results.md`` in ``--out_dir`` (default: the experiment folder).

Before scoring, the model is checked against the task and the sample rate: the task it was
trained for (``conf.yml`` ``data.task`` and the package's recipe information), its number of
outputs and its sample rate must match ``--task`` and the data.

Usage::

    python eval.py --exp_dir exp/mini_cpu_sep_noisy --meta_dir data/<corpus>/metadata \
        --task sep_noisy [--out_dir DIR] [--gpus 0] [--max_utterances N] [--n_examples 3] \
        [--extra_metrics]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import RecipeError, run_cli  # noqa: E402
from local.config import n_sources  # noqa: E402
from local.models import load_model, model_sample_rate, model_structure  # noqa: E402
from local.summary import results_markdown  # noqa: E402

#: Metrics always computed, and those of --extra_metrics (asteroid.metrics names).
BASE_METRICS = ("si_sdr", "sdr")
EXTRA_METRICS = ("stoi", "pesq")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a WHAM! experiment (recipe stage 3).")
    parser.add_argument("--exp_dir", required=True, help="experiment folder with best_model.pth")
    parser.add_argument("--meta_dir", required=True, help="folder with tt.json")
    parser.add_argument("--task", required=True, choices=("sep_noisy", "enh_single"))
    parser.add_argument("--out_dir", default=None, help="where results go (default: exp_dir)")
    parser.add_argument("--test_set", default="tt", help="metadata split to evaluate (tt)")
    parser.add_argument("--gpus", default="", help="GPU id to evaluate on (empty: CPU)")
    parser.add_argument("--max_utterances", type=int, default=None, help="evaluate the first N")
    parser.add_argument("--n_examples", type=int, default=None, help="example wavs to write")
    parser.add_argument(
        "--extra_metrics", action="store_true", help="also compute STOI and PESQ (slow)"
    )
    return parser.parse_args(argv)


def check_model_for_task(model, package: dict, conf: dict, task: str, where: str) -> None:
    """Raise if the model was not trained for ``task`` at the data's sample rate.

    Args:
        model: the loaded model.
        package: its serialized package (``infos.recipe.config`` records the training config).
        conf: the experiment's ``conf.yml``.
        task: the task to evaluate.
        where: the experiment folder, for the message.

    Raises:
        ValueError: naming what the model was trained for and what is asked.
    """
    data = conf["data"]
    problems = []
    trained = (package.get("infos", {}).get("recipe") or {}).get("config", {}).get("data", {})
    for source, section in (("conf.yml data.task", data), ("best_model.pth", trained)):
        if section.get("task") not in (None, task):
            problems.append(f"it was trained for task {section['task']!r} ({source})")
    _, n_src = n_sources(task, data.get("return_noise", True))
    model_n_src = getattr(model, "n_src", None) or package.get("model_args", {}).get("n_src")
    if model_n_src is not None and int(model_n_src) != n_src:
        problems.append(
            f"it has {model_n_src} outputs, task {task} needs {n_src} (data.return_noise="
            f"{data.get('return_noise', True)})"
        )
    data_sr, model_sr = int(data["sample_rate"]), model_sample_rate(model)
    if model_sr is not None and model_sr != data_sr:
        problems.append(f"it works at {model_sr} Hz, the data at {data_sr} Hz (data.sample_rate)")
    if trained.get("sample_rate") not in (None, data_sr):
        problems.append(f"it was trained on {trained['sample_rate']} Hz data (best_model.pth)")
    if problems:
        raise ValueError(
            f"The model of {where} cannot be evaluated on --task {task} at {data_sr} Hz: "
            + "; ".join(problems)
            + "."
        )


def score_utterance(
    mix: torch.Tensor,
    speech: torch.Tensor,
    est: torch.Tensor,
    sample_rate: int,
    metrics: tuple[str, ...] = BASE_METRICS,
) -> tuple[dict, torch.Tensor]:
    """Metrics of one utterance, PIT over the speech sources only.

    Args:
        mix (torch.Tensor): mixture ``(time,)``.
        speech (torch.Tensor): speech references ``(n_speech, time)``.
        est (torch.Tensor): the model's outputs ``(n_outputs, time)``, speech first; outputs
            after the first ``n_speech`` (the noise) are ignored.
        sample_rate (int): sample rate in Hz.
        metrics (tuple of str): ``asteroid.metrics`` names (``si_sdr``, ``sdr``, ``stoi``, ...).

    Returns:
        tuple: ``{metric: [per source], "input_<metric>": [...], "<metric>i": [...]}`` (the
        improvement over the mixture) and the speech estimates in the references' order.
    """
    from asteroid.metrics import get_metrics

    from asteroid_lir.losses import SpeechPITLoss

    n_speech = speech.shape[0]
    if est.ndim != 2 or est.shape[0] < n_speech or est.shape[-1] != speech.shape[-1]:
        raise ValueError(
            f"The model gave estimates of shape {tuple(est.shape)}; expected at least {n_speech} "
            f"sources of {speech.shape[-1]} samples."
        )
    est = est[:n_speech]
    if n_speech > 1:
        _, est = SpeechPITLoss(n_speech)(est[None], speech[None], return_est=True)
        est = est[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # mir_eval's deprecation notice
        values = get_metrics(
            mix.double().numpy(),
            speech.double().numpy(),
            est.double().numpy(),
            sample_rate=sample_rate,
            metrics_list=list(metrics),
            average=False,
            compute_permutation=False,
        )
    scores = {}
    for metric in metrics:
        out = np.asarray(values[metric], dtype=float).reshape(-1)
        inp = np.asarray(values[f"input_{metric}"], dtype=float).reshape(-1)
        scores[metric] = out.tolist()
        scores[f"input_{metric}"] = inp.tolist()
        scores[f"{metric}i"] = (out - inp).tolist()
    return scores, est


def snr_db(speech: torch.Tensor, noise: torch.Tensor) -> float:
    """Speech-to-noise ratio of the mixture in dB (speech: the sum of the speech sources)."""
    p_noise = float(noise.pow(2).sum())
    p_speech = float(speech.pow(2).sum())
    if p_noise == 0.0:
        return float("inf")
    return 10 * np.log10(max(p_speech, 1e-12) / p_noise)


def quartile_table(snrs: np.ndarray, values: dict, steps: np.ndarray | None) -> list[dict]:
    """Mean of each per-mixture value (and steps) in each quartile of input SNR.

    Args:
        snrs: input SNR of each mixture (``inf`` for a noise-free one: last quartile).
        values: ``{name: per-mixture values}``, e.g. ``{"si_sdri": ..., "sdri": ...}``.
        steps: refinement steps of each mixture (gated models) or ``None``.

    Returns:
        list of dict: one row per quartile with its SNR range, count and means.
    """
    finite = np.isfinite(snrs)
    if not finite.any():
        return []
    edges = np.quantile(snrs[finite], [0.0, 0.25, 0.5, 0.75, 1.0])
    # Quartile index of each mixture; the top edge belongs to the last quartile.
    bins = np.clip(np.searchsorted(edges, snrs, side="right") - 1, 0, 3)
    rows = []
    for q in range(4):
        sel = bins == q
        row = {
            "quartile": q + 1,
            "snr_low": float(edges[q]),
            "snr_high": float(edges[q + 1]),
            "count": int(sel.sum()),
        }
        for name, per_mix in values.items():
            row[name] = float(per_mix[sel].mean()) if sel.any() else None
        row["steps_mean"] = float(steps[sel].mean()) if steps is not None and sel.any() else None
        rows.append(row)
    return rows


def write_example(folder: Path, mix, speech, est, sample_rate: int) -> None:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    peak = float(mix.abs().max()) or 1.0
    sf.write(folder / "mixture.wav", mix.numpy(), sample_rate, subtype="FLOAT")
    for k in range(speech.shape[0]):
        sf.write(
            folder / f"s{k + 1}_reference.wav", speech[k].numpy(), sample_rate, subtype="FLOAT"
        )
        # SI-SDR ignores the scale of the estimates: bring them to the mixture's peak to listen.
        scaled = est[k] * (peak / float(est[k].abs().max().clamp_min(1e-8)))
        sf.write(folder / f"s{k + 1}_estimate.wav", scaled.numpy(), sample_rate, subtype="FLOAT")


def is_gated(model) -> bool:
    """Whether the model decides its number of refinement steps per input (a gate)."""
    return bool(getattr(getattr(model, "refiner", None), "gated", False))


def evaluate_dataset(
    model,
    dataset,
    n_utt: int,
    sample_rate: int,
    metrics: tuple[str, ...] = BASE_METRICS,
    device: torch.device | None = None,
    examples_dir: Path | None = None,
    n_examples: int = 0,
) -> tuple[list[dict], dict]:
    """Separate and score the first ``n_utt`` mixtures of ``dataset``.

    Args:
        model: ``model(wav (1, time)) -> (1, n_outputs, time)``, speech outputs first; a gated
            model is run with ``forward_with_steps`` and its steps recorded.
        dataset: a ``WhamDataset`` with ``return_noise=True`` and ``return_id=True``.
        n_utt: number of mixtures to evaluate.
        sample_rate: sample rate in Hz.
        metrics: ``asteroid.metrics`` names.
        device: where the model runs (default: CPU).
        examples_dir: where example wavs go (``<examples_dir>/<id>/``).
        n_examples: how many of the first mixtures get example wavs.

    Returns:
        tuple: one row per utterance (``id``, ``input_snr``, metrics per speech source,
        ``steps`` for gated models, ``example`` folder if written) and the timing
        (``compute_seconds``, ``audio_seconds``).

    Raises:
        RecipeError: naming the utterance whose reading, separation or scoring failed.
    """
    device = device or torch.device("cpu")
    gated = is_gated(model)
    n_speech = dataset.n_speech
    rows, compute_s, audio_s = [], 0.0, 0.0
    from tqdm import tqdm

    with torch.inference_mode():
        for i in tqdm(range(n_utt), desc="evaluation", unit="mix"):
            utt_id = str(dataset.entries[i]["id"])
            try:
                mix, targets, _ = dataset[i]
                wav = mix[None].to(device)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                tic = time.perf_counter()
                if gated:
                    est, steps = model.forward_with_steps(wav)
                else:
                    est, steps = model(wav), None
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                compute_s += time.perf_counter() - tic
                audio_s += mix.shape[-1] / sample_rate
                speech, noise = targets[:n_speech], targets[n_speech]
                scores, est_speech = score_utterance(
                    mix, speech, est.cpu()[0], sample_rate, metrics
                )
                row = {"id": utt_id, "input_snr": snr_db(speech.sum(0), noise), **scores}
                if steps is not None:
                    row["steps"] = float(torch.as_tensor(steps, dtype=torch.float).reshape(-1)[0])
                if examples_dir is not None and i < n_examples:
                    write_example(examples_dir / utt_id, mix, speech, est_speech, sample_rate)
                    row["example"] = utt_id
            except Exception as err:
                raise RecipeError(
                    f"Evaluation failed on utterance {utt_id} (item {i} of {dataset.json_path}): "
                    f"{type(err).__name__}: {err}"
                ) from err
            rows.append(row)
    return rows, {"compute_seconds": compute_s, "audio_seconds": audio_s}


def summarize(rows: list[dict], metrics: tuple[str, ...], timing: dict) -> dict:
    """Means over utterances and speech sources (and per source) of every metric."""
    summary: dict = {"n_utterances": len(rows), "metrics": list(metrics)}
    for metric in metrics:
        imp = np.array([r[f"{metric}i"] for r in rows])  # (n_utt, n_speech)
        summary[f"{metric}i"] = float(imp.mean())
        summary[f"{metric}i_per_source"] = [float(v) for v in imp.mean(0)]
        summary[f"input_{metric}"] = float(np.mean([r[f"input_{metric}"] for r in rows]))
        summary[f"output_{metric}"] = float(np.mean([r[metric] for r in rows]))
    snrs = np.array([r["input_snr"] for r in rows])
    finite = snrs[np.isfinite(snrs)]
    steps = [r["steps"] for r in rows if "steps" in r]
    summary["input_snr_mean"] = float(finite.mean()) if finite.size else None
    summary["rtf"] = timing["compute_seconds"] / timing["audio_seconds"]
    summary["steps_mean"] = float(np.mean(steps)) if steps else None
    return summary


def evaluate(args: argparse.Namespace) -> dict:
    import yaml

    from asteroid_lir.data import WhamDataset

    exp_dir = Path(args.exp_dir)
    out_dir = Path(args.out_dir) if args.out_dir else exp_dir
    conf_path = exp_dir / "conf.yml"
    if not conf_path.is_file():
        raise FileNotFoundError(f"{conf_path} is missing: train the experiment first (stage 2).")
    conf = yaml.safe_load(conf_path.read_text())
    tt_json = Path(args.meta_dir) / f"{args.test_set}.json"
    if not tt_json.is_file():
        raise FileNotFoundError(f"Test metadata {tt_json} is missing: run stage 1 first.")
    model, package = load_model(exp_dir / "best_model.pth")
    check_model_for_task(model, package, conf, args.task, str(exp_dir))
    device = torch.device(f"cuda:{args.gpus.split(',')[0]}" if args.gpus else "cpu")
    model = model.to(device).eval()
    sample_rate = int(conf["data"]["sample_rate"])
    dataset = WhamDataset(
        str(tt_json),
        task=args.task,
        segment=None,
        sample_rate=sample_rate,
        return_noise=True,
        return_id=True,
    )
    eval_conf = conf.get("evaluation") or {}
    max_utt = args.max_utterances or eval_conf.get("max_utterances") or len(dataset)
    n_utt = min(len(dataset), int(max_utt))
    n_examples = args.n_examples if args.n_examples is not None else eval_conf.get("n_examples", 3)
    metrics = BASE_METRICS + (EXTRA_METRICS if args.extra_metrics else ())
    print(
        f"[stage 3] Evaluating {exp_dir / 'best_model.pth'} on {n_utt} mixtures of {tt_json} "
        f"({', '.join(metrics)})"
    )
    rows, timing = evaluate_dataset(
        model,
        dataset,
        n_utt,
        sample_rate,
        metrics,
        device=device,
        examples_dir=out_dir / "examples",
        n_examples=int(n_examples),
    )
    gated = is_gated(model)
    snrs = np.array([r["input_snr"] for r in rows])
    per_mix = {f"{m}i": np.array([np.mean(r[f"{m}i"]) for r in rows]) for m in metrics}
    steps = np.array([r["steps"] for r in rows]) if gated else None
    recipe_info = package.get("infos", {}).get("recipe") or {}
    return {
        "tag": exp_dir.name,
        "task": args.task,
        "test_set": str(tt_json),
        "model": {
            "name": package.get("model_name"),
            "structure": model_structure(model, (conf.get("model") or {}).get("preset")),
            "model_args": package.get("model_args", {}),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "gated": gated,
            "n_steps": getattr(model, "n_steps", None),
            "progressive": recipe_info.get("progressive"),
        },
        "timing": {"device": str(device), "threads": torch.get_num_threads(), **timing},
        "summary": summarize(rows, metrics, timing),
        "quartiles": quartile_table(snrs, per_mix, steps),
        "examples": [f"examples/{r['example']}" for r in rows if "example" in r],
        "utterances": rows,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = evaluate(args)
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.exp_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "results.md").write_text(results_markdown(results))
    s = results["summary"]
    print(
        f"[stage 3] SI-SDRi {s['si_sdri']:.2f} dB (per source "
        f"{', '.join(f'{v:.2f}' for v in s['si_sdri_per_source'])}), SDRi {s['sdri']:.2f} dB, "
        f"RTF {s['rtf']:.4f}"
        + (f", {s['steps_mean']:.2f} steps per mixture" if s["steps_mean"] is not None else "")
    )
    print(f"[stage 3] Wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
