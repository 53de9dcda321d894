"""The project's exceptions: one root, so an entry point can catch ours and let bugs through."""


class UythacError(Exception):
    """Root of every error uythac raises on purpose."""


class ConfigError(UythacError):
    """A setting, scorecard or command-line value is not usable."""


class StoreError(UythacError):
    """The store cannot be used as asked (another scorecard, a clock that would move back, a partition that
    another worker moved on...)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or is locked right now: the same work may succeed later."""


class BrokerUnavailable(UythacError):
    """Kafka did not answer a command in time (the address is in the message)."""
