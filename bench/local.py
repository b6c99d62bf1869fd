"""The local provider's cost over llama-cpp-python itself. Not a test; prints numbers.

    python bench/local.py [--rounds 9] [--tokens 128]

1. Streaming throughput: ``LocalProvider.stream`` vs ``Llama.create_completion(stream=True)``
   with the same prompt and settings on the same loaded model, interleaved so drift on a
   busy machine hits both alike. Target: ratio >= 0.95.
2. Time to first token of a second agent in the process (the model already loaded),
   next to the time llama.cpp itself needs to evaluate that prompt and sample one token.
   Target: under 100 ms plus that.
3. Threads: llama-cpp-python alone at each thread count (its own default is half of
   ``os.cpu_count()``, the node's CPUs, not this process's), against victor's default (the
   CPUs this process may use: affinity, cgroup quota, CPU_LIMIT). Target: victor's default
   >= 0.95x the best raw setting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from contextlib import aclosing

from victor import Agent
from victor._machine import available_cpus
from victor.core.messages import Message, TextDelta
from victor.providers.local.guard import guard_active, llama_class
from victor.providers.local.provider import LocalProvider

PROMPT = "Write a long story about a dragon who learns to read."


async def provider_run(provider: LocalProvider, messages: list[Message]) -> tuple[float, int]:
    started = time.perf_counter()
    async for event in provider.stream(messages):
        if type(event) is not TextDelta:
            tokens = event.response.usage.output_tokens
    return time.perf_counter() - started, tokens


def direct_run(llama, request: dict) -> tuple[float, int]:
    started = time.perf_counter()
    chunks = 0
    for _ in llama.create_completion(**request, stream=True):
        chunks += 1
    return time.perf_counter() - started, chunks


async def throughput(rounds: int, tokens: int) -> None:
    # seed: both sides start from a fresh context and sample the same tokens.
    provider = LocalProvider(temperature=0.0, max_tokens=tokens, seed=7, stop=[])
    messages = [Message.user(PROMPT)]
    shared = await provider._model()
    request = provider._request(shared, messages, [])
    direct_rates, victor_rates = [], []
    for _ in range(rounds):
        with shared.lock:  # the model is the provider's too: one generation at a time
            shared.llama.reset()  # what a seeded provider request does too
            seconds, _ = direct_run(shared.llama, request)
        # Token count from the provider's usage (same prompt, same greedy tokens).
        victor_seconds, count = await provider_run(provider, messages)
        direct_rates.append(count / seconds)
        victor_rates.append(count / victor_seconds)
    direct, victor = statistics.median(direct_rates), statistics.median(victor_rates)
    print(f"streaming, {count} tokens, median of {rounds} interleaved rounds:")
    print(f"  llama-cpp-python directly  {direct:7.1f} tokens/s  {spread(direct_rates)}")
    print(f"  LocalProvider.stream       {victor:7.1f} tokens/s  {spread(victor_rates)}")
    print(f"  ratio                      {victor / direct:7.3f}  (target >= 0.95)")
    await provider.close()


async def first_token(rounds: int) -> None:
    first = await Agent.create(provider="local", temperature=0.0, max_tokens=8)
    await first.run("Hello")  # loads the model
    llama = first.provider.client().llama
    cached, ttfts, evals = [], [], []
    for i in range(rounds):
        question = f"What is {i + 2} times {i + 3}?"
        second = await Agent.create(provider="local", temperature=0.0, max_tokens=8)
        for cold, times in ((False, cached), (True, ttfts)):
            if cold:  # evaluate the whole prompt, as the llama.cpp-alone figure does
                with llama_lock(first):
                    llama.reset()
            started = time.perf_counter()
            async with aclosing(second.astream(question)) as tokens:
                async for _ in tokens:
                    times.append(time.perf_counter() - started)
                    break
        await second.cleanup()
        # llama.cpp alone: evaluate the same prompt from scratch, sample one token.
        request = second.provider._request(second.provider.client(), [Message.user(question)], [])
        request["max_tokens"] = 1
        with second.provider.client().lock:
            llama.reset()
            started = time.perf_counter()
            llama.create_completion(**request)
            evals.append(time.perf_counter() - started)
        await second.provider.close()
    ttft, prompt_eval = statistics.median(ttfts) * 1000, statistics.median(evals) * 1000
    print(f"time to first token, second agent (model loaded), median of {rounds}:")
    print(f"  first token, prompt prefix cached {statistics.median(cached) * 1000:7.1f} ms")
    print(f"  first token, cold context  {ttft:7.1f} ms")
    print(f"  llama.cpp prompt + 1 token {prompt_eval:7.1f} ms")
    print(f"  victor's share             {ttft - prompt_eval:7.1f} ms  (target < 100 ms)")
    await first.cleanup()


async def threads(rounds: int, tokens: int) -> None:
    budget = available_cpus()
    nodes = os.cpu_count() or 1
    counts = sorted({1, 2, 4, 8, budget.count, nodes, max(nodes // 2, 1)} - {0})
    counts = [n for n in counts if n <= nodes]
    provider = LocalProvider(temperature=0.0, max_tokens=tokens, seed=7, stop=[])
    request = provider._request(await provider._model(), [Message.user(PROMPT)], [])
    path = str(provider.model_file())
    llama_type = llama_class(guard_active())
    llamas = {
        n: llama_type(
            model_path=path,
            n_ctx=provider.load_settings["n_ctx"],
            n_threads=n,
            n_threads_batch=n,
            verbose=False,
        )  # fmt: skip
        for n in counts
    }
    samples: dict[int, list[float]] = {n: [] for n in counts}
    ours_samples: list[float] = []
    # Interleaved, round by round, so load from elsewhere hits every setting alike.
    for _ in range(rounds):
        for n, llama in llamas.items():
            llama.reset()
            seconds, chunks = direct_run(llama, request)
            samples[n].append(chunks / seconds)
        seconds, count = await provider_run(provider, [Message.user(PROMPT)])
        ours_samples.append(count / seconds)
    for llama in llamas.values():
        llama.close()
    raw = {n: statistics.median(rates) for n, rates in samples.items()}
    ours = statistics.median(ours_samples)
    best = max(raw, key=raw.__getitem__)
    print(f"threads ({nodes} CPUs in the node; {budget.count} usable, from {budget.source}):")
    for n, rate in raw.items():
        notes = [
            note
            for note, hit in (("llama-cpp-python's default", n == max(nodes // 2, 1)),
                              ("best", n == best))
            if hit
        ]  # fmt: skip
        print(
            f"  llama.cpp, {n:2d} thread(s)     {rate:7.1f} tokens/s  {spread(samples[n])}  "
            f"{', '.join(notes)}"
        )
    default = provider.load_settings["n_threads"]
    print(f"  victor default ({default} thread(s)) {ours:7.1f} tokens/s  {spread(ours_samples)}")
    print(f"  ratio to the best           {ours / raw[best]:7.3f}  (target >= 0.95)")
    await provider.close()


def spread(rates: list[float]) -> str:
    """The range of a setting's rounds: on a shared machine it says how far to trust a ratio."""
    return f"(rounds {min(rates):.1f}..{max(rates):.1f})"


def llama_lock(agent: Agent):
    return agent.provider.client().lock


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    await throughput(args.rounds, args.tokens)
    await first_token(args.rounds)
    await threads(args.rounds, args.tokens)


if __name__ == "__main__":
    asyncio.run(main())
