"""pytest configuration: hypothesis profiles (CI runs the same number of examples as a developer)."""

from hypothesis import HealthCheck, settings

# the session's Kafka broker (fixtures `kafka_bootstrap`, `kafka_broker`) for the tests marked `kafka`
pytest_plugins = ["tests.kafka_broker"]

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")
