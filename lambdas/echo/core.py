"""Pure core of the echo Lambda: the input back, with "Status": "OK" added."""


def echo(event):
    if isinstance(event, dict):
        return {**event, "Status": "OK"}
    return {"input": event, "Status": "OK"}
