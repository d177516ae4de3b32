"""The API reference's Python, verbatim except for the import line, the base URL and the event id."""

import paygate
from conftest import BASE


def test_retrieve_an_event(account, trigger, capsys):
    published = trigger("payment.succeeded")[0]
    client = paygate.PayGate(account["test_key"], base_url=BASE)
    # --- reference (evt_abc123def456 → a real id)
    event = client.events.retrieve(published["id"])
    print(event.type) # 'payment.succeeded'
    print(event.data.object.id) # 'pay_xyz789'
    # ---
    assert capsys.readouterr().out.splitlines() == ["payment.succeeded", published["data"]["object"]["id"]]
    assert event["data"]["object"]["id"].startswith("pay_"), "a dict view too"


def test_list_events(account, trigger, capsys):
    published = trigger("payment.succeeded", 11)
    client = paygate.PayGate(account["test_key"], base_url=BASE)
    # --- reference
    events = client.events.list(type='payment.succeeded', limit=10)
    for event in events.data:
        print(event.id, event.type)
    # ---
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10
    assert lines[0] == f"{published[-1]['id']} payment.succeeded", "newest first"
    assert events.object == "list" and events.has_more is True
