"""worldmodels' config schemas, put into Hydra's ConfigStore before Hydra composes anything, and its `${pid:}`
resolver (run folder names).

Every YAML under `conf/` extends a schema dataclass registered as `schema/...` (e.g. `conf/model/tiny_denoiser.yaml`:
`- /schema/model/tiny_denoiser@_here_`), so the store must be filled whoever composes: `python -m worldmodels.train`,
`worldmodels.core.config.compose_config`, or a test's own `initialize_config_dir`. Hydra imports every module of the
`hydra_plugins` namespace package when it starts (its plugin discovery, which is also how its launcher and sweeper
plugins register their configs), so this one registers ours, and `worldmodels.core` needs no import of the tasks.

Light: the schemas' modules import no torch, Lightning or stable-baselines3 (`import worldmodels` loads gymnasium,
for its env id). `hydra_plugins/` has no `__init__.py` on purpose: it is a namespace package shared with the
installed Hydra plugins. An editable install copies this file into site-packages (`make setup` reinstalls when it
changes), so it stays one call.
"""

from worldmodels.tasks import register_schemas  # also registers the resolvers (`worldmodels.core.config`)

register_schemas()
