"""Corpus synthesis: the embedded corpora the recipes build when no real corpus is given.

Every signal is generated here, from seeds, and nothing is downloaded:

* speech: :mod:`.speech_sources` (three engines, alone or mixed: a Piper neural voice made into
  many speakers by WORLD transforms, :mod:`.neural_speech`, :mod:`.speech_pool`,
  :mod:`.voice_transform`; eSpeak NG voices, :mod:`.espeak_lib`, :mod:`.espeak_voices`; the
  formant synthesiser, :mod:`.speech_synth`), sentences from :mod:`.sentences`;
* noise and ambience (:mod:`.noise_synth`), sound events (:mod:`.sfx_synth`), songs as four
  stems (:mod:`.music_synth`);
* corpus builders: the WHAM!-layout mini corpus (:func:`build_mini_corpus`), its held-out
  eSpeak NG test split (:func:`build_tts_testset`), the unified corpus of class folders
  (:func:`build_unified_corpus`); WHAM!-level mixing in :mod:`.mixing`, seeded synthesis
  streams in :mod:`.streams`;
* :func:`corpus_fingerprint`, the version of this code that a corpus records.

The speech engines need the ``synth`` extra (``pip install asteroid-lir[synth]``,
:mod:`.extra`); without it the builders still run with the formant voices, naming what is
missing in a warning (``speech="auto"``) or an error (an engine asked for by name). Nothing here
imports a model: the names shared with the models come from :mod:`asteroid_lir.tasks`.
"""

from .fingerprint import corpus_fingerprint
from .mini_corpus import build_mini_corpus
from .tts_testset import build_tts_testset
from .unified_corpus import build_unified_corpus

__all__ = [
    "build_mini_corpus",
    "build_tts_testset",
    "build_unified_corpus",
    "corpus_fingerprint",
]
