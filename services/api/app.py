"""The `api` service: a tiny Flask app. It imports its dependencies at start."""

from flask import Flask, jsonify
from markupsafe import escape

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name: str):
    return jsonify(greeting=f"hello {escape(name)}")


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
