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

from .fingerprint import corpus_fingerprint
from .mini_corpus import build_mini_corpus
from .tts_testset import build_tts_testset
from .unified_corpus import build_unified_corpus

__all__ = ["build_mini_corpus", "build_tts_testset", "build_unified_corpus", "corpus_fingerprint"]
