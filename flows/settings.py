"""Typed settings: ``config.yaml`` read ONCE into pydantic models and passed down.

Precedence (highest first): environment variables ``EXPORTCAST__<SECTION>__<KEY>``
(e.g. ``EXPORTCAST__RUNTIME__N_JOBS=1``; lists and mappings as JSON), then the YAML file,
then the defaults below (which mirror the shipped ``config.yaml``).

    settings = load_settings(Path("config.yaml"))
    settings.backtest.horizon            # 12
    settings.engine_settings()           # models.core.engine.EngineSettings for the engine/backtest

Unknown keys, in the file or in the environment, are rejected with a message that names the
key. Relative paths (``data.path``, ``publish.dir``, the MLflow store and artifact folder)
are resolved against the folder of the config file (the working directory when no file is
given), so a run does not depend on where it was started from.

Secrets are never settings: the customs API key is read from ``KCS_SERVICE_KEY`` by the
customs reader itself and never enters these models, so nothing here can log it.
"""

from __future__ import annotations

import json
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exportcast.errors import ExportcastError
from models.core import registry

if TYPE_CHECKING:  # imported inside engine_settings at run time
    from models.core.engine import EngineSettings
    from models.selection.champion import ChampionRule

ENV_PREFIX = "EXPORTCAST__"
ENV_DELIMITER = "__"
#: keys whose values are never logged even if a future setting carries one
SECRET_KEY_PATTERN = re.compile(r"(secret|token|password|passwd|service_key|api_key|credential)", re.IGNORECASE)


class ConfigError(ExportcastError, ValueError):
    """The configuration (file or environment) is invalid; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomsSettings(_Section):
    #: the customs API's address (a mirror or gateway may replace it)
    base_url: str = Field("https://apis.data.go.kr/1220000/", pattern=r"^https?://")
    start: str = "202201"
    end: str = "202512"
    hs_to_item: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "item:semiconductors": ["8541", "8542"],
            "item:automobiles": ["8703"],
            "item:ships": ["8901"],
            "item:secondary_batteries": ["850760"],
        }
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _yyyymm(cls, value: Any) -> str:
        text = str(value)
        if not re.fullmatch(r"(19|20)\d{2}(0[1-9]|1[0-2])", text):
            raise ValueError(f"must be a month as YYYYMM (e.g. 202201); got {value!r}")
        return text

    @model_validator(mode="after")
    def _ordered(self) -> CustomsSettings:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class DataSettings(_Section):
    source: Literal["embedded", "csv", "customs_api"] = "embedded"
    path: Path | None = None
    series: list[str] | None = None
    customs: CustomsSettings = Field(default_factory=CustomsSettings)
    #: the flash figures (customs 10-day/20-day cuts) for the ``flash-nowcast`` flow when source = csv:
    #: a file in the format of data/indicators_monthly.csv (features.contract.validate_indicators)
    indicators_path: Path | None = None
    #: a user CSV with a bad row in a series: false = that series is left out with a warning and
    #: the others are forecast; true = the whole file is refused (the embedded data are always strict)
    strict: bool = False
    #: admit negative values (signed series such as trade balances) in every series
    allow_negative: bool = False
    #: the series admitted as signed, by unique_id (the others keep the >= 0 check)
    signed: list[str] = Field(default_factory=list)
    #: a value more than this many times its series' median absolute value is a bad row
    plausibility_factor: float = Field(1e6, gt=1)

    def checks(self) -> dict[str, Any]:
        """The checks of a user CSV (``features.readers.read_user_csv`` keyword arguments)."""
        return {
            "strict": self.strict,
            "allow_negative": self.allow_negative,
            "signed": list(self.signed),
            "plausibility_factor": self.plausibility_factor,
        }

    def is_signed(self, unique_id: str) -> bool:
        """Whether the series may be negative: models keep to additive forms and never clip at zero."""
        return self.allow_negative or unique_id in self.signed

    #: the data home, outside git: the vintages of updated data and the forecast archive
    #: (features/vintages.py); the latest vintage is what every reader of the embedded source reads
    home: Path = Path("data_home")
    #: the local raw folder: the raw files without an upstream (compiled locally) are copied from it
    raw: Path = Path("../shared/data/raw")
    #: raw path -> URL or local path: the upstream of one raw file (features/upstreams.py)
    upstream: dict[str, str] = Field(default_factory=dict)
    #: every upstream raw file from <upstream_base>/<raw path> (a mirror); empty = the public defaults
    upstream_base: str = ""
    #: fetching upstreams: seconds before a read times out, attempts in all, first backoff (doubled)
    upstream_timeout: float = Field(30.0, gt=0)
    upstream_attempts: int = Field(3, ge=1)
    upstream_backoff: float = Field(1.0, ge=0)
    #: the largest raw file accepted, MB
    upstream_max_mb: float = Field(50.0, gt=0)

    @model_validator(mode="after")
    def _csv_needs_path(self) -> DataSettings:
        if self.source == "csv" and self.path is None:
            raise ValueError(
                "data.source is 'csv' but data.path is not set (path of the user CSV, long form unique_id,ds,y)"
            )
        return self


class ModelsSettings(_Section):
    enabled: list[str] = Field(
        default_factory=lambda: ["seasonal_naive", "ets", "theta", "arima", "prophet", "ensemble"]
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {
            "arima": {"max_p": 2, "max_q": 2, "max_P": 1, "max_Q": 1, "max_d": 1, "working_days": False},
            "prophet": {"seasonality_mode": "multiplicative", "working_days": True},
            "ets": {"damped_trend": True},
            "theta": {},
            "ensemble": {"members": ["arima", "prophet", "ets", "theta"]},
        }
    )
    min_obs_seasonal: int = Field(24, ge=1)
    max_missing_share: float = Field(0.5, ge=0.0, le=1.0)
    fallback: str = "naive"
    n_paths: int = Field(1000, ge=10)
    # leading-indicator models of one series: unique_id -> model names (models/families/leading.py), run for
    # that series alone, with the indicator as it was public at each cutoff (flows/jobs.py); as
    # shipped: the cycle blend for the ministry's semiconductors (a run drops a series its data lacks)
    leading: dict[str, list[str]] = Field(default_factory=lambda: {"item:semiconductors_ministry": ["cycle_blend"]})

    @field_validator("leading")
    @classmethod
    def _leading_models(cls, value: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        enabled = info.data.get("enabled") or []
        for uid, names in value.items():
            leading = registry.leading()
            wrong = [n for n in names if n not in leading]
            if wrong:
                raise ValueError(
                    f"models.leading['{uid}'] lists {wrong}: not a leading-indicator model; "
                    f"choose from {', '.join(leading)}"
                )
            shared = [n for n in names if n in enabled]
            if shared:
                raise ValueError(
                    f"models.leading['{uid}'] lists {shared}, which models.enabled runs for every series; "
                    "a leading model belongs to one of the two"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"models.leading['{uid}'] lists a model twice: {names}")
        return value

    @field_validator("enabled")
    @classmethod
    def _known_enabled(cls, value: list[str]) -> list[str]:
        known = registry.available()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; available: {', '.join(known)}")
        if len(set(value)) != len(value):
            raise ValueError(f"a model is listed twice: {value}")
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _known_params(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        known = registry.available()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"parameters given for unknown model(s) {unknown}; available: {', '.join(known)}")
        # environment overrides arrive as strings ("1", "true", "[1, 2]"): read them as YAML scalars
        return {
            name: {key: (_yaml_scalar(v) if isinstance(v, str) else v) for key, v in (params or {}).items()}
            if isinstance(params, dict)
            else params
            for name, params in value.items()
        }

    @field_validator("fallback")
    @classmethod
    def _known_fallback(cls, value: str) -> str:
        known = registry.available()
        if value not in known:
            raise ValueError(f"unknown fallback model {value!r}; available: {', '.join(known)}")
        return value

    def active(self) -> list[str]:
        """Enabled models in config order, with the seasonal-naive yardstick always first."""
        return ["seasonal_naive"] + [name for name in self.enabled if name != "seasonal_naive"]

    def leading_names(self) -> list[str]:
        """The leading models of ``leading``, each once, in config order."""
        return list(dict.fromkeys(name for names in self.leading.values() for name in names))


class BacktestSettings(_Section):
    horizon: int = Field(12, ge=1)
    windows: int = Field(3, ge=1)
    step: int = Field(6, ge=1)
    champion_metric: Literal["mase", "smape", "rmsse"] = "mase"
    # the champion rule's noise margin in standard errors of the paired difference (models/selection/champion.py)
    champion_noise_se: float = Field(1.0, ge=0)
    # the combinations of models/selection/combination.py (mean, trimmed mean, inverse-MASE) compete for champion
    combinations: bool = True

    def champion_rule(self) -> ChampionRule:
        """The champion rule of these settings (``models.selection.champion.ChampionRule``)."""
        from models.selection.champion import ChampionRule

        return ChampionRule(self.champion_metric, self.champion_noise_se)


class InstitutionalSettings(_Section):
    info_month: int = Field(10, ge=1, le=12)
    first_year: int = Field(2013, ge=1990, le=2100)
    # years before first_year whose October-cutoff windows inform the champion rule (no comparison row)
    selection_first_year: int | None = Field(2001, ge=1990, le=2100)


class PublishSettings(_Section):
    dir: Path = Path("outputs")
    # where a run on a source other than mlflow.production_source publishes (None: <dir>/<source-or-name>)
    non_production_dir: Path | None = None


class MlflowSettings(_Section):
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_location: str = "mlruns/artifacts"
    experiment: str = Field("exportcast", min_length=1)
    registered_model: str = Field("exportcast-champion", min_length=1)
    # the data source whose runs may move the registry's ``champion`` alias (after a successful publish)
    production_source: Literal["embedded", "csv", "customs_api"] = "embedded"

    @property
    def sqlite_path(self) -> Path | None:
        """The database file of a ``sqlite:///`` tracking store; None for other stores."""
        db = _sqlite_file(self.tracking_uri)
        return Path(db) if db else None


class TeamSettings(_Section):
    """The team deployment (flows/team.py: ``make team-up``): PostgreSQL, Prefect and MLflow servers."""

    # folder of every piece of its state (relative: to the config file's folder)
    dir: Path = Path(".team")
    # the address the three servers listen on; anything but a loopback address needs auth
    host: str = Field("127.0.0.1", min_length=1)
    # MLflow basic-auth and Prefect's API auth string (off only on a loopback host)
    auth: bool = True
    # 0 = a free port chosen at the first start, then kept in <dir>/state.json
    postgres_port: int = Field(0, ge=0, le=65535)
    prefect_port: int = Field(0, ge=0, le=65535)
    mlflow_port: int = Field(0, ge=0, le=65535)


class RuntimeSettings(_Section):
    n_jobs: int = Field(2, ge=1)
    seed: int = Field(0, ge=0)
    # where the per-series fits run: joblib (n_jobs local processes) or dask (a Dask cluster)
    executor: Literal["joblib", "dask"] = "joblib"
    # dask: address of an existing scheduler (tcp://host:8786); empty = a LocalCluster of n_jobs workers
    dask_address: str = ""
    # print every note, e.g. models.leading series a user's own data lacks (the CLI's --verbose)
    verbose: bool = False
    # the content-addressed fit cache (models/core/fitcache.py): a folder (relative to the config file) or "off"
    fit_cache: str = ".cache/fits"
    # the report's drawn sections kept by the content of what they read (flows/report_sections.py): a folder or "off"
    report_cache: str = ".cache/report"
    # the fitting stages at once on the one worker pool (docs/decisions/0188: 0.87x the wall time on 2 cores)
    overlap_stages: bool = True

    @field_validator("dask_address", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            value = value.strip()
            if value and not re.fullmatch(r"([a-z][a-z0-9+]*://)?[^\s/:]+(:\d+)?", value):
                raise ValueError(
                    "must be a Dask scheduler address such as tcp://10.0.0.5:8786, or empty for a local cluster"
                )
        return value

    @model_validator(mode="after")
    def _address_needs_dask(self) -> RuntimeSettings:
        if self.dask_address and self.executor != "dask":
            raise ValueError(
                f"dask_address {self.dask_address} is set but executor is {self.executor}: "
                "set executor: dask to run on that cluster, or empty dask_address"
            )
        return self

    @property
    def report_cache_dir(self) -> Path | None:
        """The report's section cache folder; None when ``report_cache`` is off."""
        return None if self.report_cache.strip().lower() in ("", "off") else Path(self.report_cache)


# the YAML content of the load in progress (a context variable, so concurrent loads in
# threads or tasks do not see each other's file)
_YAML_DATA: ContextVar[dict[str, Any] | None] = ContextVar("exportcast_yaml_data", default=None)


class _YamlSource(PydanticBaseSettingsSource):
    """The already-parsed YAML of ``load_settings``; lower priority than the environment."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        data = _YAML_DATA.get() or {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_YAML_DATA.get() or {})


class Settings(BaseSettings):
    """Everything a pipeline run needs, mirroring ``config.yaml`` section by section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    # a year, or "auto": the calendar year of the first month not yet observed (resolve_target_year)
    target_year: int | Literal["auto"] = 2026
    data: DataSettings = Field(default_factory=DataSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    institutional: InstitutionalSettings = Field(default_factory=InstitutionalSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    team: TeamSettings = Field(default_factory=TeamSettings)

    _config_file: Path | None = PrivateAttr(default=None)
    # target_year auto with data in the fourth quarter: the forecasts also run through next year
    _next_year: bool = PrivateAttr(default=False)

    @field_validator("target_year", mode="before")
    @classmethod
    def _year_or_auto(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            year = int(value)
        except (TypeError, ValueError):
            raise ValueError("must be a year (2000-2100) or auto") from None
        if not 2000 <= year <= 2100 or str(value).strip() != str(year):
            raise ValueError("must be a year (2000-2100) or auto")
        return year

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # no .env files and no secrets dir: the only inputs are the YAML file and the environment
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @model_validator(mode="after")
    def _institutional_before_target(self) -> Settings:
        if self.target_year != "auto" and self.institutional.first_year > self.target_year:
            raise ValueError(
                f"institutional.first_year {self.institutional.first_year} is after target_year {self.target_year}"
            )
        selection = self.institutional.selection_first_year
        if selection is not None and selection > self.institutional.first_year:
            raise ValueError(
                f"institutional.selection_first_year {selection} is after institutional.first_year "
                f"{self.institutional.first_year}"
            )
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def config_file(self) -> Path | None:
        """The YAML file these settings were read from (None: defaults and environment only)."""
        return self._config_file

    @property
    def forecast_end(self) -> Any:
        """The last month published: December of the target year (a pandas Timestamp)."""
        import pandas as pd

        if self.target_year == "auto":
            raise ConfigError("target_year is auto: resolve it from the data first (flows.update.resolve_target_year)")
        return pd.Timestamp(year=self.target_year + (1 if self._next_year else 0), month=12, day=1)

    @property
    def next_year_shown(self) -> bool:
        """target_year auto with the data in the fourth quarter: next year's forecast is shown too."""
        return self._next_year

    def with_target_year(self, year: int, *, next_year: bool = False) -> Settings:
        """A copy with ``target_year`` resolved (``auto`` -> ``year``), checked again."""
        if self.institutional.first_year > year:
            raise ConfigError(
                f"target_year auto resolves to {year}, before institutional.first_year {self.institutional.first_year}"
            )
        out = self.model_copy(update={"target_year": year})
        out._config_file, out._next_year = self._config_file, next_year
        return out

    def updated(self, section: str, **values: Any) -> Settings:
        """A copy with some keys of one section replaced (validated again), same config file."""
        current = getattr(self, section)
        try:
            replaced = type(current).model_validate({**current.model_dump(), **values})
        except ValidationError as exc:
            raise ConfigError(_format_errors(f"{section} settings", exc, prefix=(section,), env=False)) from None
        out = self.model_copy(update={section: replaced})
        out._config_file = self._config_file
        return out

    def _model_params(self, name: str) -> dict[str, Any]:
        """A model's params from config; an ensemble's members listed by name get the params
        those models have in config, so that a member is the same model as the standalone one."""
        params = dict(self.models.params.get(name, {}))
        members = params.get("members")
        if name == "ensemble" and isinstance(members, (list, tuple)):
            params["members"] = {m: dict(self.models.params.get(m, {})) for m in members}
        return params

    def engine_settings(self) -> EngineSettings:
        """The plain engine settings (``models.core.engine.EngineSettings``) for forecast and backtest."""
        from models.core.engine import EngineSettings, ModelSpec

        specs = tuple(ModelSpec(name, self._model_params(name)) for name in self.models.active())
        return EngineSettings(
            models=specs,
            min_obs_seasonal=self.models.min_obs_seasonal,
            max_missing_share=self.models.max_missing_share,
            fallback=self.models.fallback,
            n_paths=self.models.n_paths,
            n_jobs=self.runtime.n_jobs,
            seed=self.runtime.seed,
            executor=self.runtime.executor,
            dask_address=self.runtime.dask_address,
            signed=True if self.data.allow_negative else tuple(self.data.signed),
            plausibility_factor=self.data.plausibility_factor,
            fit_cache="" if self.runtime.fit_cache.strip().lower() in ("", "off") else self.runtime.fit_cache,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict with secret-looking keys redacted (for run.json and MLflow)."""
        return _redact(json.loads(self.model_dump_json()))

    def flat(self) -> dict[str, Any]:
        """``{"models.params.arima.max_p": 2, ...}``: the config flattened for MLflow params."""
        return _flatten(self.to_dict())

    def section_dict(self, *names: str) -> dict[str, Any]:
        """The named top-level sections (JSON-ready): the inputs of a cached pipeline step."""
        full = self.to_dict()
        return {name: full[name] for name in names}


def _yaml_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if SECRET_KEY_PATTERN.search(str(k)) else _redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(_flatten(item, f"{name}."))
        elif isinstance(item, list):
            out[name] = json.dumps(item)
        else:
            out[name] = item
    return out


# ---------------------------------------------------------------------- loading
def load_settings(path: Path | str | None = None) -> Settings:
    """Read ``path`` (YAML) once, apply ``EXPORTCAST__...`` environment overrides, validate,
    and resolve relative paths against the file's folder. ``path=None``: defaults + environment,
    paths resolved against the working directory."""
    config_file = Path(path).expanduser().resolve() if path is not None else None
    data: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_file}: not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{config_file}: the top level must be a mapping of sections; got {type(loaded).__name__}"
            )
        data = loaded
    _check_env_sections()

    token = _YAML_DATA.set(data)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(_format_errors(str(config_file) if config_file else "settings", exc)) from None
    finally:
        _YAML_DATA.reset(token)

    base = config_file.parent if config_file else Path.cwd()
    resolved = _resolve_paths(settings, base)
    resolved._config_file = config_file
    return resolved


def _check_env_sections() -> None:
    """Reject ``EXPORTCAST__<UNKNOWN>`` (pydantic-settings silently ignores unknown top-level names)."""
    known = set(Settings.model_fields)
    for name in sorted(os.environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        head = name[len(ENV_PREFIX) :].split(ENV_DELIMITER)[0].lower()
        if head not in known:
            raise ConfigError(
                f"environment variable {name}: unknown key '{head}'; known top-level keys: {', '.join(sorted(known))}"
            )


def _format_errors(origin: str, exc: ValidationError, prefix: tuple[str, ...] = (), *, env: bool = True) -> str:
    """One line per problem, each naming the key and where its value came from: an
    ``EXPORTCAST__...`` environment variable when one set it, else the config file (or the
    defaults), named by ``origin``. One problem gives a one-line message. ``env=False``: the
    values did not come from the environment (e.g. a command-line option)."""
    lines, sources = [], []
    for err in exc.errors():
        parts = [*prefix, *(str(part) for part in err["loc"])]
        loc = ".".join(parts)
        env_name = _env_source(parts) if env else None
        if err["type"] == "extra_forbidden":
            wanted = ENV_PREFIX + ENV_DELIMITER.join(p.upper() for p in parts)
            if env_name is not None:
                lines.append(f"unknown key '{loc}' (from environment variable {wanted})")
            else:
                lines.append(f"unknown key '{loc}' (in the config file or environment variable {wanted})")
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"'{loc}': {message} (got {err.get('input')!r})")
        sources.append(f"environment variable {env_name}" if env_name else origin)
    where = "; ".join(dict.fromkeys(sources)) or origin
    if len(lines) == 1:
        return f"{where}: invalid configuration: {lines[0]}"
    return f"{where}: invalid configuration:\n  " + "\n  ".join(lines)


def _env_source(parts: list[str]) -> str | None:
    """The ``EXPORTCAST__...`` variable that set the value at ``parts`` (or a mapping holding
    it, e.g. ``EXPORTCAST__MODELS__PARAMS`` as JSON), if any."""
    present = {name.upper(): name for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    for end in range(len(parts), 0, -1):
        name = ENV_PREFIX + ENV_DELIMITER.join(p.upper() for p in parts[:end])
        if name in present:
            return present[name]
    return None


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def absolute(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    data = settings.data
    if data.path is not None:
        data = data.model_copy(update={"path": absolute(data.path)})
    if data.indicators_path is not None:
        data = data.model_copy(update={"indicators_path": absolute(data.indicators_path)})
    data = data.model_copy(update={"home": absolute(data.home), "raw": absolute(data.raw)})
    if data.upstream_base and "://" not in data.upstream_base:
        data = data.model_copy(update={"upstream_base": str(absolute(Path(data.upstream_base)))})
    publish = settings.publish.model_copy(update={"dir": absolute(settings.publish.dir)})
    runtime = settings.runtime
    for key in ("fit_cache", "report_cache"):
        if getattr(runtime, key).strip().lower() not in ("", "off"):
            runtime = runtime.model_copy(update={key: str(absolute(Path(getattr(runtime, key))))})
    if publish.non_production_dir is not None:
        publish = publish.model_copy(update={"non_production_dir": absolute(publish.non_production_dir)})
    mlflow_settings = settings.mlflow.model_copy(
        update={
            "tracking_uri": _resolve_uri(settings.mlflow.tracking_uri, base),
            "artifact_location": _resolve_uri(settings.mlflow.artifact_location, base),
        }
    )
    return settings.model_copy(update={"data": data, "publish": publish, "mlflow": mlflow_settings, "runtime": runtime})


def _sqlite_file(uri: str) -> str | None:
    """The database file named by a ``sqlite:///`` URI (as written); None for another URI or an
    in-memory database."""
    if not uri.startswith("sqlite:///"):
        return None
    db = uri[len("sqlite:///") :]
    return db if db and db != ":memory:" else None


def _resolve_uri(uri: str, base: Path) -> str:
    """``sqlite:///rel.db`` -> ``sqlite:////abs/rel.db``; a bare relative path -> absolute path;
    other URIs (http, file with absolute path, s3 ...) unchanged; empty stays empty (for the
    artifact location: the tracking server's own artifact root)."""
    if not uri:
        return uri
    if uri.startswith("sqlite:///"):
        db = _sqlite_file(uri)
        return "sqlite:///" + str((base / db).resolve()) if db and not Path(db).is_absolute() else uri
    if "://" in uri or uri.startswith("file:"):
        return uri
    p = Path(uri).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())
