"""The embedded mini corpus: a WHAM!-layout corpus built from generated speech and noise.

WHAM! needs the licensed wsj0 corpus, so without it the recipes train on this corpus. Its speech
comes from :mod:`~asteroid_lir.synth.speech_sources` (by default each speaker from one of three
engines: a Piper neural voice made into many speakers by WORLD transforms, eSpeak NG's training
voices and the formant synthesiser; an engine whose package is missing is left out with a
warning), its noise from :mod:`~asteroid_lir.synth.noise_synth`, mixed at WHAM! levels in "min"
mode (:mod:`~asteroid_lir.synth.mixing`). Training and validation share one set of speakers; the
test split has its own speakers, sentences and background talkers, like wsj0-2mix.
``mixture_info/speech_source.json`` records the engine used.

Everything is a function of ``seed``: each mixture draws from its own generator
(``(seed, split, index)``) and the speech pools are synthesised by a fixed number of seeded
streams, so the corpus does not depend on the number of worker processes.

Command line::

    python -m asteroid_lir.synth.mini_corpus --out DIR [--n_train N] [--n_valid N] [--n_test N]
        [--utt_seconds S] [--seed S] [--sample_rate SR] [--workers W]
        [--speech {auto,mixed,neural,espeak,formant}] [--noise_snr_db LOW HIGH]
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..tasks import SPLITS
from .mixing import NOISE_SNR_DB, mix_wham_like, snr_range, write_csv, write_wham_mixture
from .noise_synth import make_babble_pool, synthesize_noise
from .speech_sources import ENGINES, HELD_OUT_VOICES, make_speech_source
from .streams import WORKER_STATE, map_jobs

__all__ = ["build_mini_corpus"]

# Utterance durations are uniform in [2/3, 4/3] x utt_seconds (2-4 s for the default 3 s).
_DURATION_SPREAD = (2.0 / 3.0, 4.0 / 3.0)


def _pool_sizes(
    n_train: int, n_valid: int, n_test: int, n_train_speakers: int, n_test_speakers: int
) -> dict[str, dict]:
    """Pool sizes of the engines (see ``speech_sources.DEFAULT_POOL_SIZES``).

    Piper utterances: one per 5 training/validation sources and one per 6 test sources (each
    pool utterance is excerpted by several speakers), within bounds that keep the synthesis
    time in check (about 5 s of speech per utterance). eSpeak NG voices: one per 3 speakers
    or sources, whichever is fewer, 6 sentences each, within bounds (the corpus speakers drawn
    from that engine are spread over these voices).
    """
    train = int(np.clip(np.ceil(2 * (n_train + n_valid) / 10), 4, 200))
    test = int(np.clip(np.ceil(2 * n_test / 6), 4, 40))
    voices_train = int(np.clip(min(n_train_speakers, 2 * (n_train + n_valid)) // 3, 2, 100))
    voices_test = int(np.clip(min(n_test_speakers, 2 * n_test) // 3, 2, 20))
    return {
        "neural": {"train": train, "test": test},
        "espeak": {"train": (voices_train, 6), "test": (voices_test, 6)},
    }


def _make_mixture(index: int) -> dict:
    """Generate and write mixture ``index`` of the current split; returns its info row."""
    st = WORKER_STATE
    sr, speakers = st["sample_rate"], st["speakers"]
    rng = np.random.default_rng([st["seed"], SPLITS.index(st["split"]), index])
    first, second = rng.choice(len(speakers), size=2, replace=False)
    spk1, spk2 = speakers[first], speakers[second]
    durations = rng.uniform(*_DURATION_SPREAD, size=2) * st["utt_seconds"]
    group = "test" if st["split"] == "tt" else "train"
    s1, s2 = st["source"].utterances([spk1, spk2], durations, rng, group)
    noise = partial(synthesize_noise, rng=rng, babble_pool=st["babble_pool"], sample_rate=sr)
    parts, info = mix_wham_like(s1, s2, noise, rng, st["noise_snr_db"])
    utt_id = f"{st['split']}{index:05d}_{spk1.speaker_id}_{spk2.speaker_id}"
    write_wham_mixture(st["split_dir"], utt_id, parts, sr)
    row = {"utt_id": utt_id, "speaker1": spk1.speaker_id, "speaker2": spk2.speaker_id}
    return row | {"length": len(parts["mix_both"])} | {k: round(v, 4) for k, v in info.items()}


def build_mini_corpus(
    out_root: str | Path,
    n_train: int = 2000,
    n_valid: int = 200,
    n_test: int = 200,
    seed: int = 0,
    utt_seconds: float = 3.0,
    sample_rate: int = 8000,
    progress: bool = True,
    n_train_speakers: int = 300,
    n_test_speakers: int = 18,
    workers: int = 2,
    speech: str = "auto",
    pool_dir: str | Path | None = None,
    noise_snr_db: tuple[float, float] = NOISE_SNR_DB,
) -> Path:
    """Generate the mini corpus in the WHAM! layout.

    Writes ``<out_root>/wav<sr/1000>k/min/{tr,cv,tt}/{mix_both,mix_single,mix_clean,s1,s2,noise}``
    (16-bit mono wavs, the same file names in every folder of a split) and
    ``<out_root>/mixture_info/<split>.csv`` (speakers, length and levels of each mixture) and
    ``<out_root>/mixture_info/speech_source.json`` (the speech engine used) and
    ``<out_root>/mixture_info/speakers.csv`` (each speaker's engine and voice).

    Args:
        out_root (str or Path): corpus root (created if needed).
        n_train, n_valid, n_test (int): number of mixtures per split (each at least 1).
        seed (int): seed of the whole corpus.
        utt_seconds (float): mean utterance duration (durations are uniform in
            ``[2/3, 4/3] * utt_seconds``; mixtures take the shorter one).
        sample_rate (int): sample rate in Hz.
        progress (bool): show a progress bar.
        n_train_speakers (int): speakers of the training and validation splits.
        n_test_speakers (int): speakers of the test split (distinct from the training ones).
        workers (int): processes generating mixtures (results do not depend on it).
        speech (str): speech engine: ``"auto"`` (default: a mixture of the engines that are
            installed, each missing one named in a warning), ``"mixed"``, ``"neural"``,
            ``"espeak"`` or ``"formant"``; see :mod:`asteroid_lir.synth.speech_sources`.
        pool_dir (str or Path, optional): cache of the neural voice's utterance pools (default
            ``<out_root>/speech_pool``); a pool already there for the same seed is reused.
        noise_snr_db (tuple): range in dB of the louder speaker over the noise (WHAM!'s
            ``[-6, 3]`` by default). A wider range (e.g. ``[-10, 20]``) gives an enhancement
            task whose difficulty spans more than WHAM!'s, with the same speech and noise.

    Returns:
        Path: the ``wav<sr/1000>k/min`` folder.
    """
    sizes = {"tr": n_train, "cv": n_valid, "tt": n_test}
    for split, n in sizes.items():
        if int(n) < 1:
            raise ValueError(f"Every split needs at least one mixture; got {split}={n}.")
    if utt_seconds <= 0.1:
        raise ValueError(f"utt_seconds must be above 0.1 s, got {utt_seconds}.")
    if sample_rate < 4000 or sample_rate % 1000:
        raise ValueError(f"sample_rate must be a multiple of 1000 Hz >= 4000, got {sample_rate}.")
    noise_snr_db = snr_range(noise_snr_db)  # refused here, before anything is written
    if n_train_speakers < 2 or n_test_speakers < 2:
        raise ValueError("Each speaker set needs at least two speakers.")
    wav_dir = Path(out_root) / f"wav{sample_rate // 1000}k" / "min"
    info_dir = Path(out_root) / "mixture_info"
    pool_sizes = _pool_sizes(n_train, n_valid, n_test, n_train_speakers, n_test_speakers)
    cache = Path(pool_dir) if pool_dir is not None else Path(out_root) / "speech_pool"
    # An unknown engine is refused here, before anything is written.
    source = make_speech_source(speech, seed, pool_sizes, sample_rate, workers, progress, cache)
    info_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"mini corpus speech: {source.description}", file=sys.stderr)
    record = dict(engine=source.engine, engines=getattr(source, "engines", [source.engine]))
    record |= dict(description=source.description, seed=seed, voices_never_used=HELD_OUT_VOICES)
    (info_dir / "speech_source.json").write_text(json.dumps(record, indent=1) + "\n")
    bar = tqdm(total=sum(sizes.values()), desc="mini corpus", unit="mix", disable=not progress)
    pools: dict[bool, np.ndarray] = {}
    speaker_rows: list[dict] = []
    shared = dict(seed=seed, sample_rate=sample_rate, utt_seconds=float(utt_seconds), source=source)
    shared["noise_snr_db"] = noise_snr_db
    for split, n in sizes.items():
        split_dir = wav_dir / split  # write_wham_mixture makes its folders
        # Test mixtures get their own background talkers too; tr and cv share a pool.
        is_test = split == "tt"
        if is_test not in pools:
            pool_rng = np.random.default_rng([seed, 2000 + int(is_test)])
            pools[is_test] = make_babble_pool(pool_rng, sample_rate=sample_rate)
        # Speakers: the same draws for tr and cv (which share them), others for tt.
        spk_rng = np.random.default_rng([seed, 1000 + int(is_test)])
        prefix, group = ("tt", "test") if is_test else ("tr", "train")
        n_speakers = n_test_speakers if is_test else n_train_speakers
        speakers = [
            source.draw_speaker(spk_rng, f"{prefix}{i:03d}", group) for i in range(n_speakers)
        ]
        state = dict(shared, split=split, split_dir=str(split_dir), speakers=speakers)
        state["babble_pool"] = pools[is_test]
        if split != "cv":
            speaker_rows += [
                {"speaker_id": spk.speaker_id, "split": split, "voice": source.describe(spk)}
                for spk in speakers
            ]
        rows = []
        for row in map_jobs(_make_mixture, range(n), state, workers):
            rows.append(row)
            bar.update()
        write_csv(info_dir / f"{split}.csv", rows)
    bar.close()
    write_csv(info_dir / "speakers.csv", speaker_rows)
    return wav_dir


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Build the embedded WHAM!-layout mini corpus.")
    parser.add_argument(
        "--out", dest="out_root", metavar="OUT", required=True, help="corpus root folder"
    )
    parser.add_argument("--n_train", type=int, default=2000)
    parser.add_argument("--n_valid", type=int, default=200)
    parser.add_argument("--n_test", type=int, default=200)
    parser.add_argument("--utt_seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample_rate", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speech", choices=ENGINES, default="auto", help="speech engine")
    parser.add_argument(
        "--noise_snr_db",
        type=float,
        nargs=2,
        default=NOISE_SNR_DB,
        metavar=("LOW", "HIGH"),
        help="range of the louder speaker's SNR over the noise (default: WHAM!'s -6 3)",
    )
    wav_dir = build_mini_corpus(**vars(parser.parse_args(argv)))
    print(f"Mini corpus written to {wav_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
