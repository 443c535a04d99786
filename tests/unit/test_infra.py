"""The deployment files agree with the code: app settings, queues, tables, connections, the package, the hook.

No Azure and no Bicep compiler here, so the Bicep is read with a small scanner (strings, interpolation and
comments masked) that is enough to find objects, arrays, params, modules and outputs. Every check names
the file to fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = ROOT / "function_app.py"
SAMPLE = ROOT / "local.settings.sample.json"
HOOK_SH = INFRA / "hooks" / "postdeploy.sh"
HOOK_PS1 = INFRA / "hooks" / "postdeploy.ps1"

# What the deployed package holds (DESIGN.md "Deployed to Azure").
RUNTIME_ENTRIES = {"function_app.py", "retrain", "host.json", "requirements.txt"}

# local.settings.sample.json settings that must not be copied to Azure, and why.
LOCAL_ONLY = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig.runtime",
    "AzureWebJobsStorage": "identity-based AzureWebJobsStorage__* settings in Azure",
    "RETRAIN_STORAGE": "identity-based RETRAIN_STORAGE__* settings in Azure",
    "AzureWebJobsFeatureFlags": "worker indexing is the default for the Python v2 model on Functions 4.x",
    "ARM_ACCESS_TOKEN": "static token for the local ARM emulator only (retrain/identity.py)",
}

# Settings Flex Consumption rejects or ignores, and settings that must never reach Azure.
NOT_IN_AZURE = {
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD", "WEBSITE_NODE_DEFAULT_VERSION",
    "ARM_ACCESS_TOKEN",
    "AzureWebJobsStorage", "RETRAIN_STORAGE",  # an exact (connection string) setting wins over the __ prefix
}

IDENTITY_SUFFIXES = ("blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId")

ROLE_IDS = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
}
EVENTS_TOPIC = INFRA / "core" / "eventgrid-events-topic.bicep"


# --- a small Bicep reader ---------------------------------------------------------------------------

def mask_bicep(text: str) -> str:
    """`text` with comments and string contents (interpolations included) blanked; same length and lines.

    String delimiters at code level stay, so `'...'` still marks a literal; the original text at the same
    offsets gives its value.
    """
    out: list[str] = []
    stack: list = ["code"]  # "code" | "str" | [interp depth]
    i, n = 0, len(text)

    def in_string() -> bool:
        return "str" in stack

    def blank(segment: str) -> str:
        return re.sub(r"[^\n]", " ", segment)

    while i < n:
        c, top = text[i], stack[-1]
        if top == "str":
            if c == "\\" and i + 1 < n:
                out.append(blank(text[i:i + 2]))
                i += 2
            elif c == "'":
                stack.pop()
                out.append(" " if in_string() else "'")
                i += 1
            elif text.startswith("${", i):
                stack.append([0])
                out.append("  ")
                i += 2
            else:
                out.append(blank(c))
                i += 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("'''", i):
            j = text.find("'''", i + 3)
            j = n if j < 0 else j + 3
            inner = blank(text[i + 1:j - 1])
            out.append(blank(text[i:j]) if in_string() else "'" + inner + "'")
            i = j
        elif c == "'":
            out.append(" " if in_string() else "'")
            stack.append("str")
            i += 1
        elif isinstance(top, list):  # inside ${...} of a string: blank, but track braces to find its end
            if c == "{":
                top[0] += 1
            elif c == "}":
                if top[0] == 0:
                    stack.pop()
                    out.append(" ")
                    i += 1
                    continue
                top[0] -= 1
            out.append(blank(c))
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching(masked: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (in masked text)."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    stack = []
    for i in range(open_at, len(masked)):
        c = masked[i]
        if c in pairs:
            stack.append(pairs[c])
        elif c in pairs.values():
            if not stack or stack.pop() != c:
                raise AssertionError(f"unbalanced {c!r} at offset {i}")
            if not stack:
                return i
    raise AssertionError(f"bracket at offset {open_at} is never closed")


@dataclass
class Bicep:
    path: Path
    text: str
    masked: str

    @classmethod
    @lru_cache(maxsize=None)
    def load(cls, path: Path) -> "Bicep":
        text = path.read_text(encoding="utf-8")
        return cls(path, text, mask_bicep(text))

    # top-level declarations -------------------------------------------------------------------------
    def declarations(self, keyword: str) -> dict[str, str]:
        """`param`/`var`/`output` name -> the rest of its declaration line (original text)."""
        return {m.group(1): self.code(m.start(2), m.end(2))
                for m in re.finditer(rf"(?m)^{keyword}\s+(\w+)\b(.*)$", self.masked)}

    def code(self, start: int, end: int) -> str:
        """Original text between the offsets without a trailing comment, stripped."""
        return self.text[start:start + len(self.masked[start:end].rstrip())].strip()

    def params(self) -> dict[str, str | None]:
        """param name -> default expression (None when the param is required)."""
        result = {}
        for name, rest in self.declarations("param").items():
            _, eq, default = rest.partition("=")
            result[name] = default.strip() if eq else None
        return result

    def outputs(self) -> set[str]:
        return set(self.declarations("output"))

    def value_after(self, pattern: str, start: int = 0, end: int | None = None) -> tuple[int, int]:
        """(open, close) offsets of the object/array that follows the first match of `pattern` (masked text)."""
        m = re.compile(pattern, re.M).search(self.masked, start, len(self.masked) if end is None else end)
        assert m, f"{self.path.name}: no match for {pattern!r}"
        open_at = m.end() - 1
        assert self.masked[open_at] in "{[", f"{self.path.name}: {pattern!r} is not followed by {{ or ["
        return open_at, matching(self.masked, open_at)

    def entries(self, open_at: int, close_at: int) -> dict[str, str]:
        """Direct `key: value` entries of the object between the offsets; values are the first line, as written."""
        result, depth, i = {}, 0, open_at + 1
        line_start = True
        while i < close_at:
            c = self.masked[i]
            if line_start and depth == 0:
                m = re.compile(r"[ \t]*([A-Za-z_]\w*|'[^'\n]*')[ \t]*:(.*)").match(self.text, i, close_at)
                if m and self.masked[m.start(1)] != " ":  # not inside a string or comment
                    result[m.group(1).strip("'")] = self.code(m.start(2), m.end(2))
            line_start = False
            if c in "{[(":
                depth += 1
            elif c in "}])":
                depth -= 1
            elif c == "\n":
                line_start = True
            i += 1
        return result

    def items(self, open_at: int, close_at: int) -> list[str]:
        """Items of the array between the offsets (one per line or comma-separated), as written."""
        items, depth, start = [], 0, open_at + 1
        for i in range(open_at + 1, close_at + 1):
            c = self.masked[i]
            if c in "{[(":
                depth += 1
            elif c in "}])" and i < close_at:
                depth -= 1
            if depth == 0 and (c in ",\n" or i == close_at):
                item = self.code(start, i)
                if item:
                    items.append(item)
                start = i + 1
        return items

    def object_var(self, name: str) -> dict[str, str]:
        return self.entries(*self.value_after(rf"^var\s+{name}\s*=\s*\{{"))

    def array_var(self, name: str) -> list[str]:
        return self.items(*self.value_after(rf"^var\s+{name}\s*=\s*\["))

    def modules(self) -> dict[str, tuple[Path, dict[str, str]]]:
        """module symbol -> (file, its params entries)."""
        result = {}
        for m in re.finditer(r"(?m)^module\s+(\w+)\s+'", self.masked):
            path_match = re.compile(r"'([^']+)'\s*=\s*(?:if\s*\(.*\)\s*)?\{").match(self.text, m.end() - 1)
            assert path_match, f"{self.path.name}: cannot read module {m.group(1)}"
            body_open = path_match.end() - 1
            body_close = matching(self.masked, body_open)
            params = self.entries(*self.value_after(r"^\s*params\s*:\s*\{", body_open, body_close))
            result[m.group(1)] = ((self.path.parent / path_match.group(1)).resolve(), params)
        return result


class Unresolved(Exception):
    """A Bicep expression this reader does not evaluate (module outputs, function calls, ...)."""


def literal(expr: str, scope: dict):
    """Evaluate the few expression forms the settings use: 'text ${name}', name, string(name), numbers."""
    expr = expr.strip()
    m = re.fullmatch(r"'((?:[^'\\]|\\.)*)'", expr)
    if m:
        def interpolate(part):
            if part.group(1) not in scope:  # also anything but a plain name: module outputs, calls
                raise Unresolved(expr)
            return str(scope[part.group(1)])
        return re.sub(r"\$\{([^}]*)\}", interpolate, m.group(1)).replace("\\'", "'")
    if re.fullmatch(r"-?\d+", expr):
        return int(expr)
    if expr in ("true", "false"):
        return expr == "true"
    m = re.fullmatch(r"string\((\w+)\)", expr)
    if m and m.group(1) in scope:
        return str(scope[m.group(1)])
    if re.fullmatch(r"\w+", expr) and expr in scope:
        return scope[expr]
    raise Unresolved(expr)


@lru_cache(maxsize=None)
def main_scope() -> dict:
    """main.bicep params (defaults) and simple vars, evaluated."""
    bicep = Bicep.load(MAIN)
    scope: dict = {}
    for name, default in bicep.params().items():
        if default is not None:
            try:
                scope[name] = literal(default, scope)
            except Unresolved:
                pass
    for name, rest in bicep.declarations("var").items():
        value = rest.partition("=")[2].strip()
        if value == "[":
            try:
                scope[name] = [literal(item, scope) for item in bicep.array_var(name)]
            except Unresolved:
                pass
        else:
            try:
                scope[name] = literal(value, scope)
            except Unresolved:
                pass
    return scope


@lru_cache(maxsize=None)
def app_settings() -> dict[str, str]:
    """The `appSettings` object of main.bicep: setting name -> Bicep expression."""
    return Bicep.load(MAIN).object_var("appSettings")


def resolved_settings(outputs: dict[str, str] | None = None) -> dict[str, str]:
    """appSettings evaluated; module outputs replaced by `outputs` (expression -> value) or left out."""
    outputs = outputs or {}
    env = {}
    for name, expr in app_settings().items():
        if expr in outputs:
            env[name] = outputs[expr]
            continue
        try:
            env[name] = str(literal(expr, main_scope()))
        except Unresolved:
            pass
    return env


@lru_cache(maxsize=None)
def parameters_file() -> dict:
    return json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]


def ml_key_setting_names() -> list[str]:
    names = parameters_file().get("mlKeySettingNames", {}).get("value")
    if names is None:
        names = main_scope().get("mlKeySettingNames", [])
    return list(names)


def sample_values() -> dict[str, str]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))["Values"]


# --- what the code reads ---------------------------------------------------------------------------

def function_app_source() -> str:
    return FUNCTION_APP.read_text(encoding="utf-8")


def percent_settings() -> set[str]:
    """Settings the Functions host resolves in bindings: `%NAME%` in function_app.py."""
    return set(re.findall(r"%([A-Za-z_][A-Za-z0-9_]*)%", function_app_source()))


def settings_py_names() -> set[str]:
    source = (ROOT / "retrain" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r"\b(?:text|number|env\.get)\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def storage_connection_name() -> str:
    m = re.search(r"(?m)^STORAGE\s*=\s*\"(\w+)\"", function_app_source())
    assert m, "function_app.py: expected STORAGE = \"<connection setting name>\""
    return m.group(1)


def function_app_queues() -> set[str]:
    return set(re.findall(r"queue_name\s*=\s*\"([^\"]+)\"", function_app_source()))


def blob_trigger_functions() -> list[str]:
    return re.findall(r"@app\.blob_trigger\((?:[^()]|\([^()]*\))*\)\s*\n(?:@.*\n)*def\s+(\w+)", function_app_source())


# --- app settings -----------------------------------------------------------------------------------

def test_binding_expressions_are_set_in_azure_and_in_the_sample():
    names = percent_settings()
    assert {"TRAINING_CONTAINER", "RETRAIN_SCHEDULE", "SWEEP_SCHEDULE"} <= names, "function_app.py changed shape"
    missing_bicep = names - set(app_settings())
    missing_sample = names - set(sample_values())
    assert not missing_bicep, f"infra/main.bicep appSettings lacks {sorted(missing_bicep)} (functions fail to index)"
    assert not missing_sample, f"local.settings.sample.json lacks {sorted(missing_sample)}"


def test_settings_read_by_the_app_are_set_in_azure_and_in_the_sample():
    names = settings_py_names()
    assert {"TRAINING_CONTAINER", "OUTPUT_CONTAINER", "RETRAIN_TABLE_PREFIX"} <= names, "settings.py changed shape"
    assert not names - set(app_settings()), f"infra/main.bicep appSettings lacks {sorted(names - set(app_settings()))}"
    assert not names - set(sample_values()), f"local.settings.sample.json lacks {sorted(names - set(sample_values()))}"


def test_azure_values_pass_the_apps_own_validation():
    from retrain.settings import Settings

    env = resolved_settings()
    unresolved = (settings_py_names() | percent_settings()) - set(env)
    assert not unresolved, f"infra/main.bicep: cannot evaluate {sorted(unresolved)} (use a literal or a param)"
    Settings.from_env(env)  # raises SettingsError naming the bad setting
    for schedule in ("RETRAIN_SCHEDULE", "SWEEP_SCHEDULE"):
        assert len(env[schedule].split()) == 6, f"{schedule}={env[schedule]!r}: NCRONTAB has six fields, seconds first"


def test_every_sample_setting_is_deployed_or_local_only():
    deployed = set(app_settings()) | set(ml_key_setting_names())
    unaccounted = set(sample_values()) - deployed - set(LOCAL_ONLY)
    assert not unaccounted, (f"local.settings.sample.json has {sorted(unaccounted)}: add them to infra/main.bicep "
                             "appSettings, to mlKeySettingNames (secrets) or to LOCAL_ONLY here with a reason")


def test_nothing_flex_rejects_or_local_only_reaches_azure():
    names = set(app_settings()) | set(ml_key_setting_names())
    assert not names & NOT_IN_AZURE, f"infra/main.bicep must not set {sorted(names & NOT_IN_AZURE)}"
    clash = set(app_settings()) & set(ml_key_setting_names())
    assert not clash, f"mlKeySettingNames {sorted(clash)} would overwrite app settings"


def test_storage_connections_are_identity_based_with_the_apps_identity():
    from retrain.settings import Settings
    from retrain.storage import Connection

    name = storage_connection_name()
    assert Settings().connection == name, "retrain/settings.py and function_app.py name different connections"
    connections = set(re.findall(r"connection\s*=\s*(\w+|\"[^\"]*\")", function_app_source()))
    assert connections <= {"STORAGE", f'"{name}"'}, f"function_app.py binds to other connections: {connections}"

    settings = app_settings()
    client_id = settings.get("AZURE_CLIENT_ID")
    assert client_id, "infra/main.bicep: AZURE_CLIENT_ID (ARM credential) is not set"
    for prefix in (name, "AzureWebJobsStorage"):
        missing = [s for s in IDENTITY_SUFFIXES if f"{prefix}__{s}" not in settings]
        assert not missing, f"infra/main.bicep lacks {prefix}__{missing}"
        assert literal(settings[f"{prefix}__credential"], {}) == "managedidentity"
        assert settings[f"{prefix}__clientId"] == client_id, f"{prefix}__clientId is not the app's identity"

    outputs = {"storage.outputs.blobEndpoint": "https://st.blob.core.windows.net/",
               "storage.outputs.queueEndpoint": "https://st.queue.core.windows.net/",
               "storage.outputs.tableEndpoint": "https://st.table.core.windows.net/",
               client_id: "00000000-0000-0000-0000-000000000001"}
    connection = Connection.from_env(name, resolved_settings(outputs))
    assert connection.connection_string is None and connection.credential_kind == "managedidentity"
    assert connection.client_id == "00000000-0000-0000-0000-000000000001"
    assert (connection.blob_uri, connection.queue_uri, connection.table_uri) == (
        "https://st.blob.core.windows.net/", "https://st.queue.core.windows.net/", "https://st.table.core.windows.net/")


def test_blob_trigger_client_uses_the_user_assigned_identity(monkeypatch):
    """azurefunctions-extensions-bindings-blob builds the trigger's BlobClient from the same settings."""
    from azure.identity import ManagedIdentityCredential
    from azurefunctions.extensions.bindings.blob import utils

    settings = app_settings()
    outputs = {settings["AZURE_CLIENT_ID"]: "00000000-0000-0000-0000-000000000001",
               "storage.outputs.blobEndpoint": "https://st.blob.core.windows.net/",
               "storage.outputs.queueEndpoint": "https://st.queue.core.windows.net/",
               "storage.outputs.tableEndpoint": "https://st.table.core.windows.net/"}
    name = storage_connection_name()
    for key in list(os.environ):
        if key.startswith(name):
            monkeypatch.delenv(key)
    for key, value in resolved_settings(outputs).items():
        monkeypatch.setenv(key, value)
    assert utils.using_user_managed_identity(name), f"{name}__credential and __clientId must both be set"
    client = utils.service_client_factory(name)
    assert client.url.startswith("https://st.blob.core.windows.net")
    assert isinstance(client.credential, ManagedIdentityCredential)


# --- storage resources ------------------------------------------------------------------------------

def storage_module_param(param: str) -> list:
    _, params = Bicep.load(MAIN).modules()["storage"]
    expr = params[param]
    if expr == "[":  # written inline
        bicep = Bicep.load(MAIN)
        open_at, close_at = bicep.value_after(rf"^\s*{param}\s*:\s*\[")
        return [literal(item, main_scope()) for item in bicep.items(open_at, close_at)]
    value = literal(expr, main_scope())
    assert isinstance(value, list), f"infra/main.bicep storage.{param} is not a list"
    return value


def test_every_queue_the_functions_bind_is_created():
    from retrain.events.sender import QUEUE as EVENTS_QUEUE
    from retrain.queues import Step

    bound = function_app_queues()
    assert bound == {step.queue for step in Step} | {EVENTS_QUEUE}, \
        "function_app.py queues differ from retrain/queues.py Step and retrain/events/sender.py QUEUE"
    created = set(storage_module_param("queueNames"))
    assert bound <= created, f"infra/main.bicep does not create queues {sorted(bound - created)}"


def test_containers_and_tables_match_the_settings():
    env = resolved_settings()
    containers = set(storage_module_param("containerNames"))
    for setting in ("TRAINING_CONTAINER", "OUTPUT_CONTAINER"):
        assert env[setting] in containers, f"infra/main.bicep does not create the {setting} container {env[setting]!r}"

    context = (ROOT / "retrain" / "context.py").read_text(encoding="utf-8")
    suffixes = set(re.findall(r"f\"\{prefix\}(\w+)\"", context))
    assert suffixes == {"models", "runs", "promotions", "skipped", "audit", "events"}, \
        "retrain/context.py table names changed shape"
    tables = set(storage_module_param("tableNames"))
    assert tables == {env["RETRAIN_TABLE_PREFIX"] + s for s in suffixes}
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", t) for t in tables), f"invalid table names {tables}"


def test_storage_account_uses_identity_only():
    storage = Bicep.load(INFRA / "core" / "storage.bicep").text
    assert re.search(r"allowSharedKeyAccess:\s*false", storage)
    assert re.search(r"allowBlobPublicAccess:\s*false", storage)


def role_assignments(bicep: Bicep) -> list[tuple[str, str, str]]:
    """(principal expression, scope symbol, role GUID) per roleAssignments resource (loops expanded)."""
    roles = {name: literal(expr, {}) for name, expr in bicep.object_var("roles").items()}
    granted = []
    for m in re.finditer(r"(?m)^resource\s+\w+\s+'\s*'\s*=", bicep.masked):
        if not bicep.text[m.start():m.end()].split("'")[1].startswith("Microsoft.Authorization/roleAssignments@"):
            continue
        open_at = bicep.masked.index("[" if bicep.masked[m.end():].lstrip().startswith("[") else "{", m.end())
        block = bicep.text[open_at:matching(bicep.masked, open_at) + 1]
        loop = re.search(r"for\s+(\w+)\s+in\s+(\w+)\s*:", block)
        refs = ([item for item in bicep.array_var(loop.group(2))] if loop
                else re.findall(r"roleDefinitions',\s*(roles\.\w+)\)", block))
        principal = re.search(r"principalId:\s*(\w+)", block).group(1)
        scope = re.search(r"scope:\s*(\w+)", block).group(1)
        granted += [(principal, scope, roles[ref.split(".", 1)[1]]) for ref in refs]
    return granted


def test_identity_gets_the_roles_the_app_uses():
    granted = set(role_assignments(Bicep.load(INFRA / "app" / "rbac.bicep")))
    wanted = {("storage", ROLE_IDS["Storage Blob Data Owner"]), ("storage", ROLE_IDS["Storage Queue Data Contributor"]),
              ("storage", ROLE_IDS["Storage Table Data Contributor"]), ("vault", ROLE_IDS["Key Vault Secrets User"]),
              ("applicationInsights", ROLE_IDS["Monitoring Metrics Publisher"])}
    missing = wanted - {(scope, role) for principal, scope, role in granted if principal == "identityPrincipalId"}
    names = {guid: name for name, guid in ROLE_IDS.items()}
    assert not missing, f"infra/app/rbac.bicep does not grant the app identity {[(s, names[r]) for s, r in missing]}"
    _, params = Bicep.load(MAIN).modules()["rbac"]
    assert params["identityPrincipalId"] == "identity.outputs.principalId"


def test_identity_gets_azureml_data_scientist_on_the_workspace_it_is_given():
    granted = role_assignments(Bicep.load(INFRA / "app" / "azureml-rbac.bicep"))
    assert granted == [("identityPrincipalId", "workspace", ROLE_IDS["AzureML Data Scientist"])], \
        "infra/app/azureml-rbac.bicep must grant the app identity AzureML Data Scientist on the workspace"
    main = Bicep.load(MAIN)
    _, params = main.modules()["azureMlRbac"]
    assert params == {"workspaceName": "last(azureMlWorkspace)", "identityPrincipalId": "identity.outputs.principalId"}
    assert main.params()["azureMlWorkspaceId"] == "''"
    assert re.search(r"module azureMlRbac '[^']+' = if \(!empty\(azureMlWorkspaceId\)\)", main.text), \
        "infra/main.bicep: the Azure ML role must be skipped when azureMlWorkspaceId is empty"
    assert "scope: resourceGroup(azureMlWorkspace[2], azureMlWorkspace[4])" in main.text, \
        "infra/main.bicep: assign the role in the workspace's own subscription and resource group"


# --- the app's events: an Event Grid custom topic ---------------------------------------------------

def test_the_events_topic_takes_cloudevents_and_only_entra_id():
    topic = Bicep.load(EVENTS_TOPIC).text
    assert re.search(r"resource\s+topic\s+'Microsoft\.EventGrid/topics@", topic), "expected a custom topic"
    assert re.search(r"inputSchema:\s*'CloudEventSchemaV1_0'", topic), "the sink publishes CloudEvents 1.0"
    assert re.search(r"disableLocalAuth:\s*true", topic), "the app publishes with its identity, not a key"


def test_the_app_identity_may_send_to_the_events_topic():
    granted = role_assignments(Bicep.load(EVENTS_TOPIC))
    assert ("identityPrincipalId", "topic", ROLE_IDS["EventGrid Data Sender"]) in granted, \
        f"{EVENTS_TOPIC.name}: the app identity needs EventGrid Data Sender on the topic"
    _, params = Bicep.load(MAIN).modules()["eventsTopic"]
    assert params["identityPrincipalId"] == "identity.outputs.principalId"


def test_the_events_topic_can_be_turned_off():
    main = Bicep.load(MAIN)
    assert main.params()["eventGridEventsEnabled"] == "true"
    assert re.search(r"(?m)^param\s+eventGridEventsEnabled\s+bool\b", main.text)
    assert re.search(r"module\s+eventsTopic\s+'[^']+'\s*=\s*if\s*\(eventGridEventsEnabled\)", main.text)
    assert app_settings()["EVENTGRID_TOPIC_ENDPOINT"] == "eventGridEventsEnabled ? eventsTopic.outputs.endpoint : ''"


def test_the_event_grid_sink_reads_the_settings_the_template_sets():
    from retrain.events import sinks

    assert sinks.EVENTGRID_ENDPOINT_SETTING in app_settings(), "infra/main.bicep appSettings lacks the topic endpoint"
    assert sinks.EVENTGRID_KEY_SETTING not in app_settings(), "topic keys are for local use; Azure uses the identity"
    assert "AZURE_CLIENT_ID" in app_settings(), "DefaultAzureCredential picks the user-assigned identity by client id"
    endpoint = "https://evgt-events-abc123.westeurope-1.eventgrid.azure.net/api/events"  # a topic's endpoint shape
    assert sinks.eventgrid_endpoint({sinks.EVENTGRID_ENDPOINT_SETTING: endpoint}) == endpoint
    assert sinks.eventgrid_endpoint({sinks.EVENTGRID_ENDPOINT_SETTING: ""}) is None  # turned off: no sink


# --- Key Vault references ---------------------------------------------------------------------------

def test_ml_keys_are_key_vault_references_with_valid_secret_names():
    main = Bicep.load(MAIN).text
    names = ml_key_setting_names()
    assert names, "infra/main.parameters.json: mlKeySettingNames is empty"
    for name in names:
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f"{name!r} is not a usable app setting name"
        assert re.fullmatch(r"[0-9A-Za-z-]{1,127}", name.replace("_", "-")), f"{name!r} -> invalid secret name"
    assert "@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${replace(setting, '_', '-')})" in main
    assert re.search(r"appSettings:\s*union\(appSettings,\s*mlKeyReferences\)", main)
    function = Bicep.load(INFRA / "app" / "function.bicep").text
    assert re.search(r"keyVaultReferenceIdentity:\s*identityId", function), "Key Vault references need the UAMI"
    _, kv_params = Bicep.load(MAIN).modules()["keyVault"]
    assert kv_params["name"] == "keyVaultName", "references must name the vault the template creates"


# --- Bicep structure --------------------------------------------------------------------------------

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_brackets_balance_and_api_versions_are_pinned(path):
    bicep = Bicep.load(path)
    stack = []
    pairs = {"{": "}", "[": "]", "(": ")"}
    for i, c in enumerate(bicep.masked):
        if c in pairs:
            stack.append((pairs[c], i))
        elif c in pairs.values():
            line = bicep.text.count("\n", 0, i) + 1
            assert stack and stack.pop()[0] == c, f"{path.name}: unbalanced {c!r} at line {line}"
    if stack:
        line = bicep.text.count("\n", 0, stack[-1][1]) + 1
        raise AssertionError(f"{path.name}: unclosed bracket at line {line}")
    assert bicep.masked.count("'") % 2 == 0, f"{path.name}: unterminated string"
    for m in re.finditer(r"(?m)^resource\s+\w+\s+'([^']+)'", bicep.text):
        # Microsoft Graph extension types are versioned by Graph API version (v1.0), the rest by date.
        assert re.fullmatch(r"[\w.]+/[\w./]+@\d{4}-\d{2}-\d{2}(-preview)?|Microsoft\.Graph/\w+@v1\.0",
                            m.group(1)), f"{path.name}: {m.group(1)}"


def test_modules_get_the_params_they_declare_and_expose_the_outputs_used():
    main = Bicep.load(MAIN)
    modules = main.modules()
    assert modules, "infra/main.bicep declares no modules"
    for symbol, (path, passed) in modules.items():
        assert path.is_file(), f"module {symbol}: {path} does not exist"
        module = Bicep.load(path)
        declared = module.params()
        unknown = set(passed) - set(declared)
        required = {name for name, default in declared.items() if default is None}
        assert not unknown, f"module {symbol} ({path.name}) has no params {sorted(unknown)}"
        assert required <= set(passed), f"module {symbol} ({path.name}) misses {sorted(required - set(passed))}"
    for symbol, output in set(re.findall(r"\b(\w+)\.outputs\.(\w+)", main.text)):
        assert symbol in modules, f"infra/main.bicep uses outputs of unknown module {symbol}"
        assert output in Bicep.load(modules[symbol][0]).outputs(), f"module {symbol} has no output {output}"


def test_parameters_file_matches_main_bicep():
    declared = Bicep.load(MAIN).params()
    given = parameters_file()
    unknown = set(given) - set(declared)
    assert not unknown, f"main.parameters.json sets params main.bicep does not declare: {sorted(unknown)}"
    required = {name for name, default in declared.items() if default is None}
    assert required <= set(given), f"main.parameters.json misses {sorted(required - set(given))}"
    assert given["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert given["location"]["value"] == "${AZURE_LOCATION}"
    assert "targetScope = 'subscription'" in Bicep.load(MAIN).text


def test_azure_yaml_service_and_hooks():
    yaml = pytest.importorskip("yaml")
    project = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    services = project["services"]
    assert len(services) == 1, "one Functions service"
    (name, service), = services.items()
    assert service["host"] == "function" and service["language"] in ("python", "py")
    assert Path(ROOT, service["project"]).resolve() == ROOT, "the project is the repository root"
    assert name == main_scope()["serviceName"], "azd finds the app by the azd-service-name tag: names must match"
    function = Bicep.load(INFRA / "app" / "function.bicep").text
    assert "'azd-service-name': serviceName" in function
    infra = project.get("infra", {})
    assert (ROOT / infra.get("path", "infra") / (infra.get("module", "main") + ".bicep")).is_file()
    hooks = project["hooks"]["postdeploy"]
    assert (ROOT / hooks["posix"]["run"]).resolve() == HOOK_SH.resolve()
    assert (ROOT / hooks["windows"]["run"]).resolve() == HOOK_PS1.resolve()


# --- the postdeploy hook ----------------------------------------------------------------------------

def test_hook_inputs_are_bicep_outputs_and_defaults_match_the_app():
    outputs = Bicep.load(MAIN).outputs()
    hook = HOOK_SH.read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", hook)) | {"AZURE_FUNCTION_APP_HOSTNAME"}
    assert required <= outputs, f"infra/main.bicep does not output {sorted(required - outputs)}"
    triggers = blob_trigger_functions()
    assert len(triggers) == 1, f"expected one blob trigger in function_app.py, found {triggers}"
    ps1 = HOOK_PS1.read_text(encoding="utf-8")
    for script in (hook, ps1):
        assert f"'{triggers[0]}'" in script or f":-{triggers[0]}}}" in script, "hook default function name"
        assert "Microsoft.Storage.BlobCreated" in script and "/blobServices/default/containers/" in script
        assert "systemKeys.blobs_extension" in script


FAKE_AZ = """#!/bin/sh
# records every call; `functionapp keys list` answers the key from the $KEY_AFTER-th call on
printf '%s\\n' "$*" >> "$AZ_LOG"
case "$1 $2" in
  "functionapp keys")
    n=$(cat "$AZ_COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$AZ_COUNT"
    if [ "$n" -ge "$KEY_AFTER" ]; then echo "$FAKE_KEY"; fi ;;
  "functionapp show") echo "fallback.azurewebsites.net" ;;
esac
exit 0
"""


def run_hook(tmp_path, key_after: int, attempts: int = 5):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ)
    az.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AZ_LOG": str(tmp_path / "az.log"), "AZ_COUNT": str(tmp_path / "count"),
        "KEY_AFTER": str(key_after), "FAKE_KEY": "s3cret-blobs-extension-key",
        "AZURE_RESOURCE_GROUP": "rg-test", "AZURE_FUNCTION_APP_NAME": "func-retrain-abc",
        "AZURE_FUNCTION_APP_HOSTNAME": "func-retrain-abc-h4sh.westeurope-01.azurewebsites.net",
        "AZURE_SUBSCRIPTION_ID": "00000000-1111-2222-3333-444444444444",
        "EVENTGRID_SYSTEM_TOPIC_NAME": "evgt-abc", "TRAINING_CONTAINER": resolved_settings()["TRAINING_CONTAINER"],
        "HOOK_ATTEMPTS": str(attempts), "HOOK_DELAY_SECONDS": "0",
    }
    result = subprocess.run([shutil.which("sh") or "sh", str(HOOK_SH)], env=env, capture_output=True, text=True,
                            timeout=60)
    log = (tmp_path / "az.log").read_text() if (tmp_path / "az.log").exists() else ""
    return result, log.splitlines()


needs_sh = pytest.mark.skipif(shutil.which("sh") is None or os.name == "nt", reason="needs a POSIX sh")


@needs_sh
def test_hook_subscribes_the_blob_trigger_webhook(tmp_path):
    result, calls = run_hook(tmp_path, key_after=3)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout + result.stderr, "the hook must not print the system key"
    creates = [c for c in calls if c.startswith("eventgrid system-topic event-subscription create")]
    assert len(creates) == 1 and len([c for c in calls if c.startswith("functionapp keys list")]) == 3
    args = creates[0]
    function = blob_trigger_functions()[0]
    container = resolved_settings()["TRAINING_CONTAINER"]
    assert (f"--endpoint https://func-retrain-abc-h4sh.westeurope-01.azurewebsites.net/runtime/webhooks/blobs"
            f"?functionName=Host.Functions.{function}&code=s3cret-blobs-extension-key ") in args
    assert f"--subject-begins-with /blobServices/default/containers/{container}/blobs/ " in args
    assert "--included-event-types Microsoft.Storage.BlobCreated " in args
    assert "--system-topic-name evgt-abc " in args and "--resource-group rg-test " in args
    assert all(c.endswith("--subscription 00000000-1111-2222-3333-444444444444") for c in calls)


@needs_sh
def test_hook_fails_clearly_without_the_key(tmp_path):
    result, calls = run_hook(tmp_path, key_after=99, attempts=2)
    assert result.returncode != 0 and "blobs_extension" in result.stderr
    assert not [c for c in calls if c.startswith("eventgrid")]


# --- the deployment package -------------------------------------------------------------------------

def funcignore_rules() -> list[tuple[bool, str, bool, bool]]:
    """(negated, pattern, directory only, anchored) per line, gitignore syntax."""
    rules = []
    for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines():
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        rules.append((negated, line.lstrip("/"), dir_only, anchored))
    return rules


def ignored(path: str, is_dir: bool) -> bool:
    """Whether .funcignore keeps `path` (relative, "/"-separated) out of the package."""
    rules = funcignore_rules()
    parts = path.split("/")

    def match(prefix: list[str], directory: bool) -> bool:
        result = False
        for negated, pattern, dir_only, anchored in rules:
            if dir_only and not directory:
                continue
            target = "/".join(prefix) if anchored else prefix[-1]
            if fnmatchcase(target, pattern):
                result = not negated
        return result

    return any(match(parts[:i], True) for i in range(1, len(parts))) or match(parts, is_dir)


def test_funcignore_keeps_the_runtime_files():
    for entry in sorted(RUNTIME_ENTRIES):
        assert not ignored(entry, (ROOT / entry).is_dir()), f".funcignore excludes {entry}"
    for source in sorted((ROOT / "retrain").glob("*.py")):
        assert not ignored(f"retrain/{source.name}", False), f".funcignore excludes retrain/{source.name}"


@pytest.mark.parametrize("path, is_dir", [
    ("emulators", True), ("devhost", True), ("tests", True), ("benchmarks", True), ("infra", True),
    ("docs", True), ("node_modules", True), (".venv", True), (".git", True), (".ci", True), (".azure", True),
    (".pytest_cache", True), ("retrain/__pycache__", True), ("retrain/__pycache__/x.cpython-311.pyc", False),
    ("dev", False), ("local.settings.json", False), ("local.settings.sample.json", False),
    ("requirements-dev.txt", False), ("pyproject.toml", False), ("package.json", False),
    ("package-lock.json", False), ("azure.yaml", False), ("README.md", False), (".gitignore", False),
])
def test_funcignore_excludes_dev_only_files(path, is_dir):
    assert ignored(path, is_dir), f".funcignore lets {path} into the deployment package"


def test_package_holds_only_the_runtime_files():
    git = shutil.which("git")
    if not git or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run([git, "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    top = {p.split("/", 1)[0]: "/" in p for p in listed}
    packaged = {name for name, is_dir in top.items() if not ignored(name, is_dir)}
    assert RUNTIME_ENTRIES <= packaged, f".funcignore excludes {sorted(RUNTIME_ENTRIES - packaged)}"
    assert packaged == RUNTIME_ENTRIES, (
        f"the deployment package would hold {sorted(packaged - RUNTIME_ENTRIES)} too: add them to .funcignore")


# --- requirements.txt -------------------------------------------------------------------------------

def requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_are_pinned_runtime_dependencies():
    pinned = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9_,.-]+\])?==[A-Za-z0-9.+!_-]+(\s*;.+)?")
    names = set()
    for line in requirement_lines(ROOT / "requirements.txt"):
        m = pinned.fullmatch(line)
        assert m, f"requirements.txt: {line!r} is not pinned with =="
        names.add(normalized(m.group(1)))
    assert {"azure-functions", "azurefunctions-extensions-bindings-blob"} <= names, "function_app.py imports these"
    dev_only = {normalized(re.split(r"[=<>!~\[; ]", line, 1)[0])
                for line in requirement_lines(ROOT / "requirements-dev.txt") if not line.startswith("-")}
    assert not names & dev_only, f"requirements.txt deploys dev-only packages {sorted(names & dev_only)}"


# --- identity and the trust boundary ------------------------------------------------------------------

def test_ml_key_setting_names_follow_the_secret_rule():
    from retrain.secrets import SecretRule

    rule = SecretRule.from_env(resolved_settings())
    refused = [p for p in (rule.problem(n, "mlKeySettingNames") for n in ml_key_setting_names()) if p]
    assert not refused, refused
    assert not rule.problems(("sample", n) for n in sample_values() if n.startswith("RETRAIN_SECRET_")), \
        "local.settings.sample.json"


def test_easy_auth_is_on_and_declares_the_roles_the_app_enforces():
    from retrain.principal import AUTH_SETTING, KEY_ROLES_SETTING, ROLES

    settings = app_settings()
    assert literal(settings[AUTH_SETTING], {}) == "true", f"infra/main.bicep must set {AUTH_SETTING}"
    assert KEY_ROLES_SETTING in settings
    auth = Bicep.load(INFRA / "app" / "auth.bicep").text
    declared = set(re.findall(r"(?m)^\s*value:\s*'([^']+)'", auth))
    assert declared == set(ROLES), f"infra/app/auth.bicep declares app roles {sorted(declared)}, the app uses {ROLES}"
    function = Bicep.load(INFRA / "app" / "function.bicep").text
    assert "name: 'authsettingsV2'" in function
    # Function keys must still reach the host (automation), so Easy Auth lets anonymous requests through
    # and the app enforces roles itself.
    assert re.search(r"unauthenticatedClientAction:\s*'AllowAnonymous'", function)
    assert re.search(r"requireAuthentication:\s*false", function)
    _, params = Bicep.load(MAIN).modules()["functionApp"]
    assert params["authClientId"] == "auth.outputs.clientId"
    assert json.loads((INFRA / "bicepconfig.json").read_text())["extensions"]["microsoftGraphV1"].startswith("br:")
