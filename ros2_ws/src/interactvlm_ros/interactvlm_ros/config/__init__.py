"""One parameter file for the node and the CLI: schema (typed defaults), loading, validation, paths."""

from interactvlm_ros.config.loader import Config, ConfigError, default_config_path, load_config
from interactvlm_ros.config.schema import PARAMETERS, Param

__all__ = ["Config", "ConfigError", "PARAMETERS", "Param", "default_config_path", "load_config"]
