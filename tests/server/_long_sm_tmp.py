from hypothesis import settings, HealthCheck
from tests.server.test_state_machine import ChatSessions
ChatSessions.TestCase.settings = settings(max_examples=1500, stateful_step_count=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T = ChatSessions.TestCase
