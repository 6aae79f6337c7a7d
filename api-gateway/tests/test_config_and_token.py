import pytest

from gateway import token
from gateway.auth import TokenAuthority
from gateway.config import GatewaySettings, JwtSettings
from veloz.dev import devstack

SECRET = "x" * 40
URLS = {"ESTOQUE_URL": "http://estoque:5003", "PEDIDOS_URL": "http://pedidos:5001",
        "PAGAMENTOS_URL": "http://pagamentos:5002"}


@pytest.fixture
def environment(monkeypatch):
    for name, value in URLS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    return monkeypatch


def test_settings_come_from_the_environment_with_safe_defaults(environment):
    environment.setenv("JWT_SECRET", SECRET)
    settings = GatewaySettings.from_env()
    timeouts = {b.name: b.policy.read_timeout for b in settings.backends()}
    assert timeouts == {"pedidos": 15.0, "pagamentos": 5.0, "estoque": 5.0}
    assert settings.ratelimit_storage_uri == "memory://"
    assert SECRET not in repr(settings)


def test_a_missing_jwt_secret_stops_the_gateway(environment):
    with pytest.raises(SystemExit, match="JWT_SECRET"):
        GatewaySettings.from_env()


def test_a_short_jwt_secret_stops_the_gateway(environment):
    environment.setenv("JWT_SECRET", "short")
    with pytest.raises(SystemExit, match="JWT_SECRET"):
        GatewaySettings.from_env()


def test_a_malformed_rate_limit_stops_the_gateway(environment):
    environment.setenv("JWT_SECRET", SECRET)
    environment.setenv("RATE_LIMIT_DEFAULT", "lots")
    with pytest.raises(SystemExit, match="RATE_LIMIT_DEFAULT"):
        GatewaySettings.from_env()


def test_the_token_command_prints_a_token_the_gateway_accepts(environment, capsys):
    environment.setenv("JWT_SECRET", SECRET)
    assert token.main(["--role", "customer", "--sub", "ana", "--ttl", "60"]) == 0
    minted = capsys.readouterr().out.strip()
    identity = TokenAuthority(JwtSettings(jwt_secret=SECRET)).verify(minted)
    assert (identity.subject, identity.roles) == ("ana", {"customer"})


def test_the_token_command_falls_back_to_the_local_secret_file(environment, tmp_path):
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(SECRET + "\n")
    assert token.jwt_settings(secret_file).jwt_secret.get_secret_value() == SECRET


def test_the_token_command_reads_the_secret_file_the_local_start_writes():
    assert token.LOCAL_SECRET_FILE == devstack.JWT_SECRET_FILE
