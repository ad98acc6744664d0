"""Checkpoint converters, one module per source, each tested against its reference.

- :mod:`.asteroid`: Asteroid's ``SuDORMRFImprovedNet`` -> ``LIRSuDORMRFNet`` ``(1, S, 1)``;
- :mod:`.espnet`: ESPnet's ``TFLocoformerSeparator`` (MERL's TF-Locoformer) -> ``TFLocoformerNet``;
- :mod:`.merl`: MERL's TUSS -> ``TUSSNet`` (and its band-split key map);
- :mod:`.sfc`: the SFC-CA authors' encoder/decoder -> ``SFCEncoder`` / ``SFCDecoder``.

The models keep their ``from_asteroid`` / ``from_espnet`` / ``from_merl`` class methods, which
call these.
"""
