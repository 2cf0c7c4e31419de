#!/usr/bin/env python3
"""test_serve_openai.py: `mlc-bench serve --engine null` through the official openai SDK.

Usage: python tests/test_serve_openai.py [path/to/mlc-bench] [MODEL.gguf]  (exit 0 = pass;
77 = skipped because the openai package is not installed). With MODEL.gguf (the real Gemma 3
270M in CI) it also chats with `mlc-bench serve -m MODEL.gguf`. Where `mlc-bench devices` lists an
OpenCL device (PoCL in CI), or MLC_REQUIRE_OPENCL=1 asks for one, it also chats with
`serve --backend opencl` on the small golden model ($MLC_SHARED/golden/tiny-llama-q8_0.gguf);
with MLC_SERVE_VULKAN_MODEL=M.gguf set, also with `serve -m M.gguf --backend vulkan`, against
the CPU backend's greedy text."""
import os
import signal
import subprocess
import sys

try:
    import openai
except ImportError:
    print("test_serve_openai: openai package not installed; skipped")
    sys.exit(77)

BIN = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MLC_BIN", "build/mlc-bench")


def main():
    os.environ["MLC_SERVE_TEST_KEY"] = "k123"
    p = subprocess.Popen([BIN, "serve", "--engine", "null", "--port", "0", "--itl-ms", "1",
                          "--api-key-env", "MLC_SERVE_TEST_KEY"],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k123", max_retries=0)
        assert [m.id for m in c.models.list().data] == ["null"]
        r = c.completions.create(model="null", prompt="a b c", max_tokens=4)
        assert r.choices[0].text == "tok0 tok1 tok2 tok3 ", r
        assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens == 4, r.usage
        r = c.chat.completions.create(model="null", max_tokens=3,
                                      messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == "tok0 tok1 tok2 ", r
        assert r.choices[0].finish_reason == "length"
        text, usage = "", None
        for ch in c.chat.completions.create(model="null", max_tokens=5, stream=True,
                                            stream_options={"include_usage": True}, stop=["tok4"],
                                            messages=[{"role": "user", "content": "hi"}]):
            if ch.usage:
                usage = ch.usage
            for choice in ch.choices:
                text += choice.delta.content or ""
        assert text == "tok0 tok1 tok2 tok3 ", text
        assert usage and usage.completion_tokens == 5, usage
        # One SSE event per token, also when the tokens come faster than the client reads.
        pieces = [ch.choices[0].text
                  for ch in c.completions.create(model="null", prompt="a", max_tokens=40,
                                                 stream=True)
                  if ch.choices and ch.choices[0].text]
        assert pieces == [f"tok{i} " for i in range(40)], pieces
        try:
            c.completions.create(model="nope", prompt="x")
            raise AssertionError("unknown model accepted")
        except openai.NotFoundError:
            pass
        try:
            c.completions.create(model="null", prompt="x", temperature=9)
            raise AssertionError("bad temperature accepted")
        except openai.BadRequestError as e:
            assert e.body.get("param") == "temperature", e.body
        bad = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="wrong", max_retries=0)
        try:
            bad.models.list()
            raise AssertionError("wrong key accepted")
        except openai.AuthenticationError:
            pass
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
    assert rc == 0, rc
    print("test_serve_openai: ok")


def chat_with_model(model, extra=()):
    """A chat request to a real model: a 200 with text, usage and a stream that adds up."""
    p = subprocess.Popen([BIN, "serve", "-m", model, "--port", "0", "--ctx", "512", "-t", "2", *extra],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        name = os.path.basename(model)
        assert [m.id for m in c.models.list().data] == [name]
        msgs = [{"role": "user", "content": "What is the capital of France?"}]
        r = c.chat.completions.create(model=name, max_tokens=12, temperature=0, messages=msgs)
        text = r.choices[0].message.content
        assert text and r.usage.completion_tokens == 12, r
        streamed = "".join(ch.choices[0].delta.content or ""
                           for ch in c.chat.completions.create(model=name, max_tokens=12, temperature=0,
                                                               messages=msgs, stream=True)
                           if ch.choices)
        assert streamed == text, (streamed, text)
        print(f"test_serve_openai: {name}{' ' + ' '.join(extra) if extra else ''} answers {text!r}")
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
    assert rc == 0, rc


def chat_on_opencl():
    """The same chat on `serve --backend opencl` with the small golden model, where an OpenCL
    device is present; under MLC_REQUIRE_OPENCL=1 a missing device or model fails."""
    required = os.environ.get("MLC_REQUIRE_OPENCL") == "1"
    devices = subprocess.run([BIN, "devices"], stdout=subprocess.PIPE, text=True, check=True).stdout
    shared = os.environ.get("MLC_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared"))
    model = os.path.join(shared, "golden", "tiny-llama-q8_0.gguf")
    if "\n  opencl:0 " not in devices or not os.path.exists(model):
        why = "no OpenCL device" if "\n  opencl:0 " not in devices else f"{model} is missing"
        assert not required, f"{why}, and MLC_REQUIRE_OPENCL=1"
        print(f"test_serve_openai: --backend opencl skipped ({why})")
        return
    chat_with_model(model, ("--backend", "opencl"))


def chat_on(model, backend):
    """Greedy chat with `serve -m model` on backend (extra serve args): (text, streamed text)."""
    p = subprocess.Popen([BIN, "serve", "-m", model, "--port", "0", "--ctx", "256", "-t", "2"] + backend,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        name = os.path.basename(model)
        msgs = [{"role": "user", "content": "Once upon a time"}]
        r = c.chat.completions.create(model=name, max_tokens=8, temperature=0, messages=msgs)
        assert r.choices[0].message.content and r.usage.completion_tokens == 8, r
        streamed = "".join(ch.choices[0].delta.content or ""
                           for ch in c.chat.completions.create(model=name, max_tokens=8, temperature=0,
                                                               messages=msgs, stream=True)
                           if ch.choices)
        return r.choices[0].message.content, streamed
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 0


def chat_on_vulkan(model):
    """`serve --backend vulkan` (device 0: lavapipe in CI) answers the SDK, streamed and not,
    with the CPU backend's greedy text on the same small model."""
    text, streamed = chat_on(model, ["--backend", "vulkan", "--device", "0"])
    assert streamed == text, (streamed, text)
    cpu_text, _ = chat_on(model, ["--backend", "cpu"])
    assert text == cpu_text, (text, cpu_text)
    print(f"test_serve_openai: {os.path.basename(model)} on vulkan answers {text!r}")


if __name__ == "__main__":
    main()
    if len(sys.argv) > 2:
        chat_with_model(sys.argv[2])
    chat_on_opencl()
    # MLC_SERVE_VULKAN_MODEL=M.gguf (a small golden model): the vulkan backend too
    if os.environ.get("MLC_SERVE_VULKAN_MODEL"):
        chat_on_vulkan(os.environ["MLC_SERVE_VULKAN_MODEL"])
