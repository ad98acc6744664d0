"""Checkpoint converters, one module per source, each tested against its reference.

- :mod:`.asteroid`: Asteroid's ``SuDORMRFImprovedNet`` -> ``LIRSuDORMRFNet`` ``(1, S, 1)``;
- :mod:`.espnet`: ESPnet's ``TFLocoformerSeparator`` (MERL's TF-Locoformer) -> ``TFLocoformerNet``;
- :mod:`.merl`: MERL's TUSS -> ``TUSSNet`` (and its band-split key map);
- :mod:`.sfc`: the SFC-CA authors' encoder/decoder -> ``SFCEncoder`` / ``SFCDecoder``.

The models keep their ``from_asteroid`` / ``from_espnet`` / ``from_merl`` class methods, which
call these.
"""

from __future__ import annotations

from collections.abc import Mapping


def rename_prefixes(state: Mapping, prefixes: Mapping[str, str]) -> dict:
    """``state`` with every key that starts with a key of ``prefixes`` (the first that matches)
    renamed to start with its value instead; the other keys are kept."""
    out = {}
    for key, value in state.items():
        old = next((p for p in prefixes if key.startswith(p)), None)
        out[key if old is None else prefixes[old] + key[len(old) :]] = value
    return out
