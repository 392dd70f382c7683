"""Load scenarios for mlapi (locust). Run through `make load` (loadtest/run.py), or by hand:

    .venv/bin/locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8000 -u 32 -r 8 -t 60s

Users (weights: predictions dominate):
  SinglePredictUser  POST /v1/predict {"text"}              name "/v1/predict (single)"
  BatchPredictUser   POST /v1/predict {"texts"} of 8-32     name "/v1/predict (batch)"
  CoursePredictUser  the course's scenario: GET / then POST /predict?text=...
                                                             names "/ (course)", "/predict (course)"
  FeedbackUser       predict, then POST /v1/feedback with its id
                                                             names "/v1/predict (feedback)", "/v1/feedback"
  PageUser           GET /, the HTML page                   name "/"

Environment:
  MLAPI_TOKEN          bearer token (scopes predict,feedback) when the API has keys; unset: no header
  LOADTEST_WAIT_MIN/MAX seconds each user waits between tasks (default 0.5 / 1.5)
  LOADTEST_SHAPE=step  grow by steps up to -u users instead of ramping at -r per second:
  LOADTEST_STEP_USERS  users added per step (default a quarter of -u, at least 1)
  LOADTEST_STEP_SECONDS seconds per step (default 10); the run ends at -t (or after the last
                       step has run one more step's time when -t is not given)
"""

from __future__ import annotations

import math
import os
import random

from locust import HttpUser, LoadTestShape, between, task

TEXTS_EN = [
    "Thank you so much, you are amazing",
    "What a great day",
    "The service was fast and the staff were lovely",
    "I love this product, it works perfectly",
    "It broke again after two days, useless",
    "Worst customer support I have ever dealt with",
    "The delivery was late and the box was damaged",
    "I am so disappointed with this update",
    "Paris is the capital of France.",
    "The meeting is scheduled for Tuesday at 10 am.",
    "The package contains three cables and a manual.",
    "not bad at all, I would buy it again",
]
TEXTS_ES = [
    "Me encanta este curso",
    "me encanta, es genial",
    "Qué buen servicio, muy recomendable",
    "El personal fue muy amable y atento",
    "qué mala atención, nunca más",
    "El producto llegó roto y nadie responde",
    "Estoy muy decepcionado con la compra",
    "Horrible, no funciona nada",
    "Madrid es la capital de España.",
    "La reunión es el martes a las diez.",
    "El paquete incluye un cable y un manual.",
    "No está mal, cumple lo que promete",
]
TEXTS = TEXTS_EN + TEXTS_ES
LABELS = ("negative", "neutral", "positive")


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def auth_headers() -> dict[str, str]:
    token = os.environ.get("MLAPI_TOKEN", "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def one_text() -> str:
    return random.choice(TEXTS)


def some_texts(low: int = 8, high: int = 32) -> list[str]:
    return [random.choice(TEXTS) for _ in range(random.randint(low, high))]


class MlapiUser(HttpUser):
    abstract = True
    wait_time = between(_seconds("LOADTEST_WAIT_MIN", 0.5), _seconds("LOADTEST_WAIT_MAX", 1.5))

    def on_start(self):
        self.client.headers.update(auth_headers())

    def predict(self, body: dict, name: str) -> dict | None:
        """POST /v1/predict; the answer when it is a 200 with a label (or predictions), else a failure."""
        with self.client.post("/v1/predict", json=body, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return None
            try:
                answer = resp.json()
            except ValueError:
                resp.failure("the answer is not JSON")
                return None
            if "texts" in body:
                got = answer.get("predictions") if isinstance(answer, dict) else None
                if not isinstance(got, list) or len(got) != len(body["texts"]):
                    resp.failure(f"expected {len(body['texts'])} predictions")
                    return None
            elif not isinstance(answer, dict) or answer.get("label") not in LABELS:
                resp.failure("the answer has no label")
                return None
            return answer


class SinglePredictUser(MlapiUser):
    """One text per request: the common case."""

    weight = 5

    @task
    def predict_one(self):
        self.predict({"text": one_text()}, "/v1/predict (single)")


class BatchPredictUser(MlapiUser):
    """A batch of 8-32 texts per request."""

    weight = 2

    @task
    def predict_batch(self):
        self.predict({"texts": some_texts()}, "/v1/predict (batch)")


class CoursePredictUser(MlapiUser):
    """The course exercise's scenario, unchanged: the page, then predictions in the query string."""

    weight = 2

    def on_start(self):
        super().on_start()
        self.page()  # the course's user opens the page first

    @task(1)
    def page(self):
        with self.client.get("/", name="/ (course)", catch_response=True) as resp:
            if resp.status_code != 200 or "<form" not in resp.text:
                resp.failure(f"{resp.status_code}: not the page")

    @task(3)
    def course_predict(self):
        with self.client.post("/predict", params={"text": one_text()}, name="/predict (course)",
                              catch_response=True) as resp:
            try:
                ok = resp.status_code == 200 and resp.json().get("success") is True
            except ValueError:
                ok = False
            if not ok:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")


class FeedbackUser(MlapiUser):
    """Predict, then correct that prediction by its id (as the page's Right/Wrong form does)."""

    weight = 1

    @task
    def predict_then_correct(self):
        answer = self.predict({"text": one_text()}, "/v1/predict (feedback)")
        if not answer:
            return
        body = {"id": answer["id"], "label": random.choice(LABELS)}
        with self.client.post("/v1/feedback", json=body, name="/v1/feedback",
                              catch_response=True) as resp:
            if resp.status_code != 202:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")


class PageUser(MlapiUser):
    """Someone opening the HTML page."""

    weight = 1

    @task
    def page(self):
        with self.client.get("/", name="/", catch_response=True) as resp:
            if resp.status_code != 200 or "<form" not in resp.text:
                resp.failure(f"{resp.status_code}: not the page")


class StepLoadShape(LoadTestShape):
    """Steps of LOADTEST_STEP_USERS users every LOADTEST_STEP_SECONDS, up to -u, until -t.
    Active only with LOADTEST_SHAPE=step; otherwise locust's plain -u/-r ramp applies."""

    abstract = os.environ.get("LOADTEST_SHAPE", "").strip().lower() != "step"
    use_common_options = True  # read -u, -r and -t instead of ignoring them

    def tick(self):
        options = self.runner.environment.parsed_options
        users = max(1, int(options.num_users or 1))
        rate = float(options.spawn_rate or users)
        step_users = int(os.environ.get("LOADTEST_STEP_USERS") or max(1, users // 4))
        step_seconds = _seconds("LOADTEST_STEP_SECONDS", 10.0)
        run_time = options.run_time or step_seconds * (math.ceil(users / step_users) + 1)
        elapsed = self.get_run_time()
        if elapsed >= run_time:
            return None
        return min(users, step_users * (int(elapsed // step_seconds) + 1)), rate
