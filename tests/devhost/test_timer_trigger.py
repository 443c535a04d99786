"""Timer triggers: NCRONTAB schedules from %SETTING%, firing on schedule, on demand and through the admin route."""

from __future__ import annotations

import requests

from .devhost_testkit import wait_for


def test_the_admin_route_fires_a_timer_now(sample, start_host):
    host = start_host()
    r = requests.post(f"{host.url}/admin/functions/tick", json={"input": ""}, timeout=5)
    assert r.status_code == 202
    wait_for(lambda: sample.results("timer"), what="timer record")
    assert sample.results("timer") == [{"past_due": False}]


def test_fire_timer_runs_it_and_returns_the_invocation_result(sample, start_host):
    host = start_host()
    result = host.fire_timer("tick")
    assert result.succeeded and result.trigger == "timerTrigger"
    assert len(sample.results("timer")) == 1


def test_the_schedule_comes_from_the_app_setting_and_fires_on_time(sample, start_host):
    host = start_host(settings={"SAMPLE_SCHEDULE": "* * * * * *"})   # every second
    wait_for(lambda: sample.results("timer"), timeout=3, what="a scheduled tick")
    assert host.invocations[0].reason.startswith("Timer fired at")


def test_the_admin_route_gives_404_for_an_unknown_function(start_host):
    host = start_host()
    assert requests.post(f"{host.url}/admin/functions/nope", json={"input": ""}, timeout=5).status_code == 404


def test_the_admin_route_passes_input_to_a_queue_function_as_the_message_body(sample, start_host):
    host = start_host()
    assert requests.post(f"{host.url}/admin/functions/record_message", json={"input": "by hand"},
                         timeout=5).status_code == 202
    wait_for(lambda: sample.results("queue"), what="queue record")
    assert sample.results("queue")[0]["body"] == "by hand"


def test_run_on_startup_fires_once_when_the_host_starts():
    import threading

    import azure.functions as func

    from devhost.app import read_functions
    from devhost.connections import StorageClients
    from devhost.invoker import Invoker, WorkerPool
    from devhost.timers import TimerScheduler, TimerTrigger

    app = func.FunctionApp()
    seen = []

    @app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
    def at_start(timer: func.TimerRequest) -> None:
        seen.append(timer.past_due)

    [spec] = read_functions(app)
    pool, stop = WorkerPool(1), threading.Event()
    scheduler = TimerScheduler([TimerTrigger.of(spec)], Invoker(StorageClients({}), {}), pool, stop)
    scheduler.start(schedule=False)
    assert pool.wait_idle(5)
    pool.shutdown()
    assert seen == [False]
