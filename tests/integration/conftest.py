from tests.integration.stack import live_stack  # noqa: F401
from tests.servers import openbao_server  # noqa: F401
