"""The app's function index: one FunctionApp, get_functions() read once, bindings devhost can serve."""

from __future__ import annotations

import types

import azure.functions as func
import pytest

from devhost.app import find_app, read_functions
from devhost.errors import AppLoadError, BindingError


def _app_with_one_queue_function() -> func.FunctionApp:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
    def handle(msg: func.QueueMessage) -> None:
        pass

    return app


def test_get_functions_is_called_once_per_app_object_however_often_the_index_is_read():
    app = _app_with_one_queue_function()
    calls = []
    original = app.get_functions
    app.get_functions = lambda: calls.append(1) or original()
    first, second = read_functions(app), read_functions(app)
    assert first is second
    assert len(calls) == 1


def test_the_index_holds_each_functions_trigger_bindings_and_callable():
    [spec] = read_functions(_app_with_one_queue_function())
    assert spec.name == "handle"
    assert spec.trigger == {"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": "q",
                            "connection": "AzureWebJobsStorage"}
    assert spec.trigger_param.annotation is func.QueueMessage
    assert callable(spec.func)


def test_the_sample_apps_binding_contract(sample_root):
    import sys
    sys.path.insert(0, str(sample_root))
    import sample_app
    specs = {s.name: s for s in read_functions(sample_app.app)}
    assert {n: s.trigger_type for n, s in specs.items()} == {
        "get_run": "httpTrigger", "create_model": "httpTrigger", "latest": "httpTrigger", "files": "httpTrigger",
        "boom": "httpTrigger", "record_message": "queueTrigger", "always_fails": "queueTrigger",
        "forward": "queueTrigger", "on_upload_client": "blobTrigger", "on_upload_stream": "blobTrigger",
        "tick": "timerTrigger"}
    assert specs["on_upload_client"].trigger["source"] == "EventGrid"
    assert specs["tick"].trigger["schedule"] == "%SAMPLE_SCHEDULE%"


def test_a_module_without_a_function_app_is_an_error():
    with pytest.raises(AppLoadError, match="defines no FunctionApp"):
        find_app(types.ModuleType("empty"))


def test_a_module_with_two_function_apps_is_an_error():
    module = types.ModuleType("two")
    module.a, module.b = func.FunctionApp(), func.FunctionApp()
    with pytest.raises(AppLoadError, match="defines 2 FunctionApp objects"):
        find_app(module)


def test_an_unsupported_binding_is_refused_at_start_up():
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
    @app.table_output(arg_name="row", table_name="t", connection="AzureWebJobsStorage")
    def handle(msg: func.QueueMessage, row: func.Out[str]) -> None:
        pass

    with pytest.raises(BindingError, match="does not support the OUT 'table' binding 'row'"):
        read_functions(app)
