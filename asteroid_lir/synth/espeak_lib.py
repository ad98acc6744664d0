"""eSpeak NG as a library: text to IPA phonemes, and text to speech (through ``espeakng-loader``).

``espeakng-loader`` bundles ``libespeak-ng`` and its data, so nothing is installed on the
system; this module binds the few C functions we need with :mod:`ctypes`.
:meth:`EspeakLibrary.phonemize` gives the IPA that the Piper voice of
:mod:`~asteroid_lir.synth.neural_speech` reads; :meth:`EspeakLibrary.synthesize` speaks with the
training voices of :mod:`~asteroid_lir.synth.espeak_voices` and the held-out voices of
:mod:`~asteroid_lir.synth.tts_testset`. The library holds global state (one voice, one set of
parameters, audio state carried from one utterance to the next), so a process uses one
:class:`EspeakLibrary` (:func:`espeak_library`), created on first use, never on import.

Why a binding of our own (measured 2026-12 on the 2-core CPU, against PyPI's packages): the
GPL-3.0 ``phonemizer`` 3.4.0 gives the same IPA for 10 of 10 corpus sentences, 0.34 ms against
0.77 ms a sentence (0.2 % of the Piper voice's 447 ms), but phonemizes only, so it would replace
about 20 lines; ``espeakng`` 1.0.5 runs the ``espeak-ng`` program (a system install, no pitch
range, and no way to seed the noise, so the pools and the held-out set would no longer be
functions of their seeds); ``piper-tts`` bundles its own eSpeak NG for phonemes only.

References:
    eSpeak NG, ``speak_lib.h`` (the C API), https://github.com/espeak-ng/espeak-ng.
"""

from __future__ import annotations

import ctypes
import re

import numpy as np

from .extra import missing_packages, require

__all__ = ["EspeakLibrary", "espeak_library", "espeak_library_available"]

# speak_lib.h constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_PHONEMES_IPA = 0x02
_PARAMETERS = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_EE_OK = 0
# Language-switch marks such as "(fr)" that eSpeak puts around foreign words.
_LANG_FLAGS = re.compile(r"\([^)]*\)")


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.POINTER(ctypes.c_ubyte))]
    _fields_ += [("identifier", ctypes.c_char_p)]
    _fields_ += [(name, ctypes.c_ubyte) for name in ("gender", "age", "variant", "xx1")]
    _fields_ += [("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_INSTANCE: EspeakLibrary | None = None
_int, _uint, _str = ctypes.c_int, ctypes.c_uint, ctypes.c_char_p
#: Result and argument types of the C functions used (None: arguments left unchecked).
_SIGNATURES = {
    "espeak_Initialize": (_int, [_int, _int, _str, _int]),
    "espeak_SetVoiceByName": (_int, [_str]),
    "espeak_SetParameter": (_int, [_int, _int, _int]),
    "espeak_TextToPhonemes": (_str, [ctypes.POINTER(_str), _int, _int]),
    "espeak_Synth": (
        _int,
        [_str, ctypes.c_size_t, _uint, _int, _uint, _uint, ctypes.c_void_p, ctypes.c_void_p],
    ),
    "espeak_SetSynthCallback": (None, [_CALLBACK]),
    "espeak_Synchronize": (_int, None),
    "espeak_ListVoices": (ctypes.POINTER(ctypes.POINTER(_Voice)), [ctypes.c_void_p]),
}


def espeak_library_available() -> tuple[bool, str]:
    """Whether the bundled eSpeak NG library can be used, and why not.

    Returns:
        tuple: ``(available, reason)``; ``reason`` is empty when available.
    """
    return missing_packages("espeakng_loader")


class EspeakLibrary:
    """The eSpeak NG C library loaded from ``espeakng-loader`` (use :func:`espeak_library`).

    Raises:
        RuntimeError: the package is missing or the library fails to initialise.
    """

    def __init__(self) -> None:
        loader = require("eSpeak NG is not available", "espeakng_loader")
        lib = ctypes.CDLL(loader.get_library_path())
        for name, (restype, argtypes) in _SIGNATURES.items():
            getattr(lib, name).restype = restype
            if argtypes is not None:
                getattr(lib, name).argtypes = argtypes
        self._languages: dict[str, str] | None = None
        data = loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data folder {data.decode()}).")
        self.sample_rate = int(rate)
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        # Keep a reference to the callback: the library calls it after this function returns.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def seed_random(self, seed: int) -> None:
        """Seed the C library's ``rand()``, where eSpeak NG draws its voices' noise.

        Args:
            seed (int): the seed (taken modulo 2**32).
        """
        libc = ctypes.CDLL(None)
        libc.srand.argtypes = [ctypes.c_uint]
        libc.srand(int(seed) % (1 << 32))

    def _collect(self, wav, n_samples, _events) -> int:
        if n_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # continue

    def _set_voice(self, voice: str) -> None:
        if self._lib.espeak_SetVoiceByName(voice.encode()) == _EE_OK:
            return
        # Not a voice name: look the language up (e.g. "en-gb" is the voice "gmw/en"), as the
        # espeak-ng program does, and keep the variant ("+m3").
        language, _, variant = voice.partition("+")
        identifier = self._voices_by_language().get(language.lower())
        if identifier is not None:
            name = identifier + (f"+{variant}" if variant else "")
            if self._lib.espeak_SetVoiceByName(name.encode()) == _EE_OK:
                return
        raise ValueError(f"Unknown eSpeak NG voice {voice!r}.")

    def _voices_by_language(self) -> dict[str, str]:
        """Language code -> identifier of the first voice speaking it (highest priority)."""
        if self._languages is None:
            self._languages = {}
            voices = self._lib.espeak_ListVoices(None)
            k = 0
            while voices[k]:
                entry = voices[k].contents
                k += 1
                # Packed list: a priority byte, the language, a NUL; an empty entry ends it.
                address = ctypes.cast(entry.languages, ctypes.c_void_p).value
                while address and (packed := ctypes.string_at(address)):
                    language = packed[1:].decode(errors="replace").lower()
                    self._languages.setdefault(language, entry.identifier.decode())
                    address += len(packed) + 1
        return self._languages

    def phonemize(self, text: str, voice: str = "en-us") -> list[str]:
        """IPA phonemes of ``text``, one string per clause (punctuation is not included).

        Args:
            text (str): text without control characters.
            voice (str): eSpeak NG voice (language) used for the pronunciation.

        Returns:
            list of str: the IPA of each clause, words separated by spaces.
        """
        if not text.strip():
            raise ValueError("Cannot phonemize empty text.")
        self._set_voice(voice)
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        clauses = []
        while ptr.value:
            out = self._lib.espeak_TextToPhonemes(
                ctypes.byref(ptr), _ESPEAK_CHARS_UTF8, _ESPEAK_PHONEMES_IPA
            )
            phonemes = _LANG_FLAGS.sub("", (out or b"").decode("utf-8")).strip()
            if phonemes:
                clauses.append(phonemes)
        return clauses

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
    ) -> np.ndarray:
        """Speak ``text`` with an eSpeak NG voice.

        Args:
            text (str): the text.
            voice (str): voice name, with an optional variant (``"en-gb+f3"``).
            rate (int): words per minute (80-450).
            pitch (int): base pitch (0-100).
            pitch_range (int): pitch range (0-100).

        Returns:
            np.ndarray: ``(time,)`` float64 waveform in [-1, 1] at :attr:`sample_rate`.
        """
        if not text.strip():
            raise ValueError("Cannot speak empty text.")
        self._set_voice(voice)
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range)):
            self._lib.espeak_SetParameter(_PARAMETERS[name], int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = self._lib.espeak_Synth(data, len(data), 0, 1, 0, _ESPEAK_CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        if err != _EE_OK or not self._chunks:
            raise RuntimeError(f"eSpeak NG failed to speak {text!r} with voice {voice!r}.")
        wav = np.concatenate(self._chunks).astype(np.float64) / 32768.0
        self._chunks = []
        return wav


def espeak_library() -> EspeakLibrary:
    """The process' :class:`EspeakLibrary`, created on first use."""
    global _INSTANCE
    if _INSTANCE is None:
        _INSTANCE = EspeakLibrary()
    return _INSTANCE
