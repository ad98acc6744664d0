"""asteroid_lir: latent iterative refinement, progressive training and early exit for Asteroid.

Importing the package registers its models with Asteroid's model registry, so that
``asteroid.models.BaseModel.from_pretrained(path)`` can rebuild any serialized asteroid_lir
model.
"""

import warnings

__version__ = "0.1.0"

# asteroid 0.7.0 pins torchmetrics<=0.11.4, which imports pkg_resources and warns about it when
# asteroid is first imported; the warning concerns that pin, not anything a user of this package
# can act on. Silenced for that import only: the process-wide filters are restored after it.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    import asteroid  # noqa: F401

from . import filterbanks, masknn, models  # noqa: E402
from .models import __all__ as _model_names  # noqa: E402


def _register_models() -> None:
    from asteroid import models as asteroid_models

    for name in _model_names:
        cls = getattr(models, name)
        try:
            asteroid_models.get(name)
        except ValueError:
            asteroid_models.register_model(cls)


_register_models()

__all__ = ["__version__", "filterbanks", "masknn", "models"]
