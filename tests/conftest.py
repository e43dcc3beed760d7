from tests.temporal_env import dev_env, ts_env  # noqa: F401
