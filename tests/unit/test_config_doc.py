"""The configuration table (docs/configuration.md) is generated from Settings: no drift."""

from __future__ import annotations

import re

from relay.config import Settings
from relay.tools import config_doc


def test_configuration_table_matches_settings() -> None:
    page = config_doc.REFERENCE.read_text()
    assert page == config_doc.render(page), "run: python -m relay.tools.config_doc"


def test_every_setting_is_documented_once() -> None:
    documented = re.findall(r"^\| `(RELAY_[A-Z_]+)` \|", config_doc.REFERENCE.read_text(), re.M)
    expected = [f"RELAY_{name.upper()}" for name in Settings.model_fields]
    assert documented == expected
    assert all(field.description for field in Settings.model_fields.values())


def test_design_contract_names_exist() -> None:
    # the configuration names are a contract: these names may be added to, never renamed.
    contract = """KAFKA_BOOTSTRAP KAFKA_SECURITY_PROTOCOL KAFKA_SASL_MECHANISM KAFKA_SASL_USERNAME
    KAFKA_SASL_PASSWORD KAFKA_SSL_CA_FILE TOPICS GROUP_ID DLQ_TOPIC SCHEMA_REGISTRY_URL
    API_BASE_URL TOKEN_URL CLIENT_ID CLIENT_SECRET AUTH_METHOD APP_ID ACTIVITY_BASE_URL
    ID_NAMESPACE COURSE_MAP SUBJECTS PREFLIGHT MAX_IN_FLIGHT HTTP_TIMEOUT RETRY_BASE RETRY_CAP
    RETRY_BUDGET RETRY_AFTER_CAP WEB_PORT SHUTDOWN_GRACE ALLOW_INSECURE_HTTP LOG_LEVEL""".split()
    fields = {name.upper() for name in Settings.model_fields}
    assert [name for name in contract if name not in fields] == []
