"""A held-out WHAM!-layout test split from eSpeak NG voices (the generalisation check).

A model trained on the mini corpus should also separate speech it never heard. This split's
speakers are the eSpeak NG variants the mini corpus never uses
(:data:`~asteroid_lir.synth.espeak_voices.HELD_OUT_VARIANTS`, through the ``synth`` extra's
library), each with its own accent, pitch and speed, speaking English sentences from a fixed
list, mixed with the mini corpus' test noise at WHAM! levels. eSpeak NG's ``rand()`` is seeded
first, but the breath noise of three held-out voices (``f2``, ``f3``, ``f5``) may still differ
from one process to the next, so build the set once and keep it, as the WHAM! recipe does (the
``espeak-ng`` program, whose noise cannot be seeded at all, is not used). Only ``tt`` is
written: validate it with ``validate_wham_dir(path, splits=("tt",))``.

Command line::

    python -m asteroid_lir.synth.tts_testset --out DIR [--n_test 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .espeak_lib import espeak_library, espeak_library_available
from .espeak_voices import HELD_OUT_VARIANTS, to_rate_and_trim
from .extra import require
from .mixing import mix_wham_like, write_csv, write_wham_mixture
from .noise_synth import make_babble_pool, synthesize_noise

__all__ = ["build_tts_testset", "espeak_available"]

_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
_SENTENCES = (
    "The old lighthouse keeper climbed the stairs before the storm arrived.",
    "Please put the blue folder on the second shelf near the window.",
    "Our train was delayed for almost an hour because of the snow.",
    "She painted the fence green and then sat down to rest.",
    "Seven hungry children waited quietly for the soup to cool.",
    "The committee will publish its final report early next spring.",
    "A sudden gust of wind carried the paper lanterns over the lake.",
    "He forgot his keys again, so he waited by the garden gate.",
    "Fresh bread and strong coffee make a very pleasant breakfast.",
    "The museum opens at nine and closes at five on weekdays.",
    "Could you tell me where the nearest post office is?",
    "Thousands of birds gather on the marsh every autumn.",
    "The engineer checked each valve twice before starting the pump.",
    "My grandmother still writes letters with a fountain pen.",
    "They measured the distance between the two villages by bicycle.",
    "Nobody expected the quiet student to win the chess tournament.",
    "The recipe calls for three eggs, a cup of flour and some butter.",
    "Heavy clouds were rolling in from the western mountains.",
    "Remember to water the tomatoes while I am away.",
    "The pilot announced that we would land twenty minutes early.",
    "A small boat drifted slowly past the wooden pier.",
    "We should compare the results before drawing any conclusion.",
    "The violinist tuned her instrument while the audience waited.",
    "Every Thursday the market fills the square with fruit and flowers.",
    "He explained the rules of the game in a very calm voice.",
    "The library will be closed for repairs during the holidays.",
    "Bright yellow taxis lined up outside the busy station.",
    "She answered the phone on the third ring and smiled.",
    "Mountain roads can be dangerous after a night of freezing rain.",
    "The children built a castle of sand that the tide washed away.",
    "Why did the orchestra start so late this evening?",
    "The farmer sold his apples at the roadside for a fair price.",
    "Several scientists doubted the accuracy of the first measurement.",
    "Turn left at the bakery and walk straight to the river.",
    "The new bridge will shorten the journey by almost half.",
    "An owl called softly from the dark edge of the forest.",
    "They celebrated the victory with music and dancing until midnight.",
    "Kindly switch off your phones before the film begins.",
    "The kettle whistled just as the guests knocked on the door.",
    "Their small company grew quickly after the first contract.",
)


def espeak_available() -> bool:
    """Whether eSpeak NG can be used here (the ``espeakng-loader`` package of the synth extra)."""
    return espeak_library_available()[0]


def _speak(text: str, voice: dict, sample_rate: int) -> np.ndarray:
    lib = espeak_library()
    wav = lib.synthesize(
        text, f"{voice['voice']}+{voice['variant']}", rate=voice["speed"], pitch=voice["pitch"]
    )
    return to_rate_and_trim(wav, lib.sample_rate, sample_rate, text)


def build_tts_testset(
    out_root: str | Path,
    n_test: int = 200,
    seed: int = 0,
    n_speakers: int = 18,
    sample_rate: int = 8000,
    progress: bool = True,
) -> Path:
    """Build ``<out_root>/wav<k>k/min/tt`` from eSpeak NG speech and the synthetic test noise.

    Args:
        out_root (str or Path): root of the test set (created if needed).
        n_test (int): number of mixtures.
        seed (int): seed (voices, sentences, levels and noise).
        n_speakers (int): number of espeak-ng "speakers" (voice, variant, pitch, speed).
        sample_rate (int): sample rate in Hz.
        progress (bool): show a progress bar.

    Returns:
        Path: the ``wav<k>k/min`` folder (holding only ``tt``).

    Raises:
        RuntimeError: eSpeak NG is not installed (the message names the package) or fails.
        ValueError: fewer than one mixture or two speakers.
    """
    require("eSpeak NG is not available for the held-out test set", "espeakng_loader")
    if n_test < 1 or n_speakers < 2:
        raise ValueError(f"Need n_test >= 1 and n_speakers >= 2, got {n_test}, {n_speakers}.")
    if progress:
        print(
            f"held-out test set speech: eSpeak NG voices {', '.join(HELD_OUT_VARIANTS)} (library "
            "from espeakng-loader); the mini corpus never uses these voices",
            file=sys.stderr,
        )
    # eSpeak NG's noise comes from rand(): seeded, a fresh process builds the same set.
    espeak_library().seed_random(seed)
    rng = np.random.default_rng([seed, 3000])
    speakers = [
        {
            "id": f"es{i:02d}",
            "voice": str(rng.choice(_VOICES)),
            "variant": HELD_OUT_VARIANTS[i % len(HELD_OUT_VARIANTS)],
            "pitch": int(rng.integers(20, 80)),
            "speed": int(rng.integers(130, 190)),
        }
        for i in range(n_speakers)
    ]
    wav_dir = Path(out_root) / f"wav{sample_rate // 1000}k" / "min"
    split_dir = wav_dir / "tt"  # write_wham_mixture makes its folders
    # The same kind of noise as the mini corpus' test split (its own background talkers).
    pool = make_babble_pool(np.random.default_rng([seed, 2001]), sample_rate=sample_rate)
    rows = []
    for index in tqdm(range(n_test), desc="espeak-ng test set", disable=not progress):
        mix_rng = np.random.default_rng([seed, 3001, index])
        first, second = mix_rng.choice(n_speakers, size=2, replace=False)
        texts = mix_rng.choice(len(_SENTENCES), size=2, replace=False)
        spk1, spk2 = speakers[first], speakers[second]
        s1, s2 = (_speak(_SENTENCES[t], spk, sample_rate) for t, spk in zip(texts, (spk1, spk2)))
        noise = partial(synthesize_noise, rng=mix_rng, babble_pool=pool, sample_rate=sample_rate)
        parts, info = mix_wham_like(s1, s2, noise, mix_rng)
        utt_id = f"tt{index:05d}_{spk1['id']}_{spk2['id']}"
        write_wham_mixture(split_dir, utt_id, parts, sample_rate)
        rows.append({"utt_id": utt_id, "length": len(parts["mix_both"]), **info})
    info_dir = Path(out_root) / "mixture_info"
    info_dir.mkdir(parents=True, exist_ok=True)
    write_csv(info_dir / "tt.csv", rows)
    write_csv(info_dir / "speakers.csv", speakers)
    record = dict(engine="espeak-ng", voices=list(HELD_OUT_VARIANTS), access="library", seed=seed)
    (info_dir / "speech_source.json").write_text(json.dumps(record, indent=1) + "\n")
    return wav_dir


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Build an espeak-ng WHAM!-layout test split.")
    parser.add_argument("--out", dest="out_root", required=True, help="root folder of the test set")
    parser.add_argument("--n_test", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample_rate", type=int, default=8000)
    try:
        wav_dir = build_tts_testset(**vars(parser.parse_args(argv)))
    except RuntimeError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    print(f"espeak-ng test split written to {wav_dir / 'tt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
