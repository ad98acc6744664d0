"""Stage 3 of the WHAM! recipe: evaluate a trained model on whole test utterances.

Computes the SI-SDR improvement of every speech source (permutation invariant over the speech
sources), its mean, the SI-SDRi by quartile of input SNR (speech-to-noise ratio of the mixture),
the parameter count, the real-time factor and, for gated models, the refinement steps run per
mixture; writes a few separated examples. Outputs ``results.json`` and ``results.md`` in
``--out_dir`` (default: the experiment folder).

Usage::

    python eval.py --exp_dir exp/mini_cpu_sep_noisy --meta_dir data/<corpus>/metadata \
        --task sep_noisy [--out_dir DIR] [--gpus 0] [--max_utterances N] [--n_examples 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local.cli import run_cli  # noqa: E402
from local.config import n_sources  # noqa: E402
from local.summary import results_markdown  # noqa: E402


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
    return parser.parse_args(argv)


def load_model(path: Path):
    """Load ``best_model.pth`` with the asteroid_lir class named in the package."""
    import asteroid_lir.models as lir_models
    from asteroid_lir.models.base import load_model_conf

    if not path.is_file():
        raise FileNotFoundError(f"No trained model at {path}: run stage 2 (./run.sh --stage 2).")
    package = load_model_conf(path)
    name = package.get("model_name", "")
    model_cls = getattr(lir_models, name, None)
    if model_cls is None:
        if name == "GatedLIRSuDORMRFNet":
            from asteroid_lir.models.gated_lir_sudormrf import GatedLIRSuDORMRFNet as model_cls
        else:
            raise ValueError(f"{path} holds an unknown model {name!r}.")
    return model_cls.from_pretrained(package), package


def si_sdr(est: torch.Tensor, ref: torch.Tensor) -> float:
    """SI-SDR in dB of one estimate against one reference (1-D tensors)."""
    from asteroid.losses import singlesrc_neg_sisdr

    return float(-singlesrc_neg_sisdr(est[None], ref[None])[0])


def snr_db(speech: torch.Tensor, noise: torch.Tensor) -> float:
    """Speech-to-noise ratio of the mixture in dB (speech: the sum of the speech sources)."""
    p_noise = float(noise.pow(2).sum())
    p_speech = float(speech.pow(2).sum())
    if p_noise == 0.0:
        return float("inf")
    return 10 * np.log10(max(p_speech, 1e-12) / p_noise)


def quartile_table(snrs: np.ndarray, sdris: np.ndarray, steps: np.ndarray | None) -> list[dict]:
    """Mean SI-SDRi (and steps) of the mixtures in each quartile of input SNR."""
    finite = np.isfinite(snrs)
    if not finite.any():
        return []
    edges = np.quantile(snrs[finite], [0.0, 0.25, 0.5, 0.75, 1.0])
    # Quartile index of each mixture; the top edge belongs to the last quartile.
    bins = np.clip(np.searchsorted(edges, snrs, side="right") - 1, 0, 3)
    rows = []
    for q in range(4):
        sel = bins == q
        rows.append(
            {
                "quartile": q + 1,
                "snr_low": float(edges[q]),
                "snr_high": float(edges[q + 1]),
                "count": int(sel.sum()),
                "si_sdri": float(sdris[sel].mean()) if sel.any() else None,
                "steps_mean": float(steps[sel].mean()) if steps is not None and sel.any() else None,
            }
        )
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


def evaluate(args: argparse.Namespace) -> dict:
    import yaml
    from tqdm import tqdm

    from asteroid_lir.data import WhamDataset
    from asteroid_lir.losses import SpeechPITLoss

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
    device = torch.device(f"cuda:{args.gpus.split(',')[0]}" if args.gpus else "cpu")
    model = model.to(device).eval()
    sample_rate = int(conf["data"]["sample_rate"])
    n_speech, _ = n_sources(args.task, True)
    dataset = WhamDataset(
        str(tt_json),
        task=args.task,
        segment=None,
        sample_rate=sample_rate,
        return_noise=True,
        return_id=True,
    )
    eval_conf = conf.get("evaluation") or {}
    n_total = len(dataset)
    max_utt = args.max_utterances or eval_conf.get("max_utterances") or n_total
    n_utt = min(n_total, int(max_utt))
    n_examples = args.n_examples if args.n_examples is not None else eval_conf.get("n_examples", 3)
    if n_utt == 0:
        raise ValueError(f"The test set {tt_json} is empty.")
    pit = SpeechPITLoss(n_speech)
    gated = hasattr(model, "forward_with_steps")
    rows, examples = [], []
    compute_s, audio_s = 0.0, 0.0
    print(f"[stage 3] Evaluating {exp_dir / 'best_model.pth'} on {n_utt} mixtures of {tt_json}")
    with torch.inference_mode():
        for i in tqdm(range(n_utt), desc="evaluation", unit="mix"):
            mix, targets, utt_id = dataset[i]
            speech, noise = targets[:n_speech], targets[n_speech]
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
            est = est.cpu()[:, :n_speech]
            _, est = pit(est, speech[None], return_est=True)
            est = est[0]
            out = [si_sdr(est[k], speech[k]) for k in range(n_speech)]
            base = [si_sdr(mix, speech[k]) for k in range(n_speech)]
            row = {
                "id": str(utt_id),
                "input_snr": snr_db(speech.sum(0), noise),
                "si_sdr": out,
                "input_si_sdr": base,
                "si_sdri": [o - b for o, b in zip(out, base)],
            }
            if steps is not None:
                row["steps"] = float(torch.as_tensor(steps, dtype=torch.float).reshape(-1)[0])
            rows.append(row)
            if i < n_examples:
                folder = out_dir / "examples" / str(utt_id)
                write_example(folder, mix, speech, est, sample_rate)
                examples.append(str(folder.relative_to(out_dir)))
    sdri = np.array([r["si_sdri"] for r in rows])  # (n_utt, n_speech)
    snrs = np.array([r["input_snr"] for r in rows])
    steps = np.array([r["steps"] for r in rows]) if gated else None
    finite_snr = snrs[np.isfinite(snrs)]
    summary = {
        "n_utterances": n_utt,
        "si_sdri": float(sdri.mean()),
        "si_sdri_per_source": [float(v) for v in sdri.mean(0)],
        "input_si_sdr": float(np.mean([r["input_si_sdr"] for r in rows])),
        "output_si_sdr": float(np.mean([r["si_sdr"] for r in rows])),
        "input_snr_mean": float(finite_snr.mean()) if finite_snr.size else None,
        "rtf": compute_s / audio_s,
        "steps_mean": float(steps.mean()) if steps is not None else None,
    }
    margs = package.get("model_args", {})
    iters = margs.get("n_iters")
    if isinstance(iters, (list, tuple)):
        iters = iters[0] if len(set(iters)) == 1 else "(" + ",".join(map(str, iters)) + ")"
    structure = (
        f"{margs.get('n_blocks', 1)}x{margs.get('n_sub_blocks')}x{iters} "
        "(blocks x sub-blocks x iterations)"
    )
    return {
        "tag": exp_dir.name,
        "task": args.task,
        "test_set": str(tt_json),
        "model": {
            "name": package.get("model_name"),
            "structure": structure,
            "model_args": margs,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "gated": gated,
        },
        "timing": {
            "device": str(device),
            "threads": torch.get_num_threads(),
            "compute_seconds": compute_s,
            "audio_seconds": audio_s,
        },
        "summary": summary,
        "quartiles": quartile_table(snrs, sdri.mean(1), steps),
        "examples": examples,
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
        f"{', '.join(f'{v:.2f}' for v in s['si_sdri_per_source'])}), RTF {s['rtf']:.4f}"
        + (f", {s['steps_mean']:.2f} steps per mixture" if s["steps_mean"] is not None else "")
    )
    print(f"[stage 3] Wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
