from tests.integration.stack import live_stack  # noqa: F401
from tests.temporal_env import dev_env, ts_env  # noqa: F401
