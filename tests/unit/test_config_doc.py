"""The README's configuration table is generated from Settings; it must never drift."""

from __future__ import annotations

import re

from relay.config import Settings
from relay.tools import config_doc


def test_readme_table_matches_settings() -> None:
    readme = config_doc.README.read_text()
    assert readme == config_doc.render(readme), "run: python -m relay.tools.config_doc"


def test_every_setting_is_documented_once() -> None:
    documented = re.findall(r"^\| `(RELAY_[A-Z_]+)` \|", config_doc.README.read_text(), re.M)
    expected = [f"RELAY_{name.upper()}" for name in Settings.model_fields]
    assert documented == expected
    assert all(field.description for field in Settings.model_fields.values())


def test_design_contract_names_exist() -> None:
    # DESIGN.md's table is a contract: these names may be added to, never renamed.
    contract = """KAFKA_BOOTSTRAP KAFKA_SECURITY_PROTOCOL KAFKA_SASL_MECHANISM KAFKA_SASL_USERNAME
    KAFKA_SASL_PASSWORD KAFKA_SSL_CA_FILE TOPICS GROUP_ID DLQ_TOPIC SCHEMA_REGISTRY_URL
    API_BASE_URL TOKEN_URL CLIENT_ID CLIENT_SECRET AUTH_METHOD APP_ID ACTIVITY_BASE_URL
    ID_NAMESPACE COURSE_MAP SUBJECTS PREFLIGHT MAX_IN_FLIGHT HTTP_TIMEOUT RETRY_BASE RETRY_CAP
    RETRY_BUDGET RETRY_AFTER_CAP WEB_PORT SHUTDOWN_GRACE ALLOW_INSECURE_HTTP LOG_LEVEL""".split()
    fields = {name.upper() for name in Settings.model_fields}
    assert [name for name in contract if name not in fields] == []
