from pathlib import Path

import pytest

from omnilab import ConfigError, Settings


def test_defaults():
    s = Settings()
    assert s.data_dir == Path("data/lab")
    assert s.redis_url == "embedded" and s.redis_prefix == "omnilab:" and s.index == "flat"
    assert s.read_only is False and s.redis_layout == "omnilab"
    assert s.resolved_database_url == f"sqlite:///{(Path('data/lab') / 'omnilab.db').resolve()}"


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().redis_url = "redis://x"  # type: ignore[misc]


def test_from_env_reads_omnilab_variables_and_keywords_win():
    env = {
        "OMNILAB_DATA_DIR": "/tmp/somewhere",
        "OMNILAB_DATABASE_URL": "postgresql+psycopg://u@h/db",
        "OMNILAB_REDIS_URL": "redis://127.0.0.1:6379/2",
        "OMNILAB_REDIS_PREFIX": "team1:",
        "OMNILAB_EMBEDDER": "hashing:256",
        "OMNILAB_INDEX": "hnsw",
        "OMNILAB_READ_ONLY": "true",
        "OMNILAB_REDIS_LAYOUT": "platform",
    }
    s = Settings.from_env(env)
    assert s.read_only is True and s.redis_layout == "platform"
    assert Settings.from_env(env, read_only=False).read_only is False
    assert s.data_dir == Path("/tmp/somewhere")
    assert s.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert (s.redis_url, s.redis_prefix, s.embedder, s.index) == (
        "redis://127.0.0.1:6379/2",
        "team1:",
        "hashing:256",
        "hnsw",
    )
    assert Settings.from_env(env, embedder="hashing").embedder == "hashing"


@pytest.mark.parametrize(
    "var, value",
    [
        ("OMNILAB_REDIS_URL", "http://localhost:6379"),
        ("OMNILAB_REDIS_PREFIX", "no-colon"),
        ("OMNILAB_REDIS_PREFIX", "has space:"),
        ("OMNILAB_DATABASE_URL", "mysql://root@localhost/test"),
        ("OMNILAB_DATABASE_URL", "not a url at all"),
        ("OMNILAB_INDEX", "ivf"),
        ("OMNILAB_EMBEDDER", ""),
        ("OMNILAB_READ_ONLY", "maybe"),
        ("OMNILAB_REDIS_LAYOUT", "celery"),
    ],
)
def test_invalid_values_name_the_variable(var, value):
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: value})


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({}, colour="blue")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings().replace(colour="blue")


def test_open_refuses_a_mistyped_option_and_names_the_closest(tmp_path):
    import omnilab

    with pytest.raises(ConfigError, match=r"'embeder' \(did you mean 'embedder'\?\)"):
        omnilab.open(tmp_path / "lab", embeder="hashing")
    with pytest.raises(ConfigError, match=r"'databse_url' \(did you mean 'database_url'\?\), 'zzz'"):
        omnilab.open(tmp_path / "lab", databse_url="postgresql://x/y", zzz=1)
    assert not (tmp_path / "lab").exists()  # refused before anything is created


def test_open_options_are_keyword_only_and_typed(tmp_path):
    import inspect

    import omnilab
    from omnilab.config import ENV_VARS

    params = inspect.signature(omnilab.open).parameters
    settings_fields = set(ENV_VARS) - {"data_dir"}
    assert settings_fields <= {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert all(params[n].annotation != "Any" for n in settings_fields - {"embedder"})
    with omnilab.open(tmp_path / "lab", embedder="hashing", log_access=True) as lab:
        assert lab.memory.embedder.name.startswith("hashing")


def test_open_refuses_an_object_that_is_no_embedder_before_creating_anything(tmp_path):
    import omnilab

    with pytest.raises(ConfigError, match="embedder must be a spec string, an Embedder"):
        omnilab.open(tmp_path / "lab", embedder=object())
    assert not (tmp_path / "lab").exists()
