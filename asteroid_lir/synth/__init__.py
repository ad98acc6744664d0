"""Corpus synthesis: the embedded corpora the recipes build when no real corpus is given.

Every signal is generated here, from seeds, and nothing is downloaded: speech
(:mod:`.speech_sources`: a Piper neural voice made into many speakers by WORLD transforms,
eSpeak NG voices and a formant synthesiser, alone or mixed), noise and ambience
(:mod:`.noise_synth`), sound events (:mod:`.sfx_synth`) and songs as four stems
(:mod:`.music_synth`). The builders: the WHAM!-layout mini corpus (:func:`build_mini_corpus`),
its held-out eSpeak NG test split (:func:`build_tts_testset`) and the unified corpus of class
folders (:func:`build_unified_corpus`); :func:`corpus_fingerprint` is the version of this code
that a corpus records.

The speech engines need the ``synth`` extra (``pip install asteroid-lir[synth]``,
:mod:`.extra`); without it the builders still run with the formant voices, naming what is
missing in a warning (``speech="auto"``) or an error (an engine asked for by name). Nothing here
imports a model: the names shared with the models come from :mod:`asteroid_lir.tasks`.
"""

import importlib

# Loaded on first use, so that ``python -m asteroid_lir.synth.<builder>`` runs its module once.
_HOMES = {
    "build_mini_corpus": "mini_corpus",
    "build_tts_testset": "tts_testset",
    "build_unified_corpus": "unified_corpus",
    "corpus_fingerprint": "fingerprint",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
