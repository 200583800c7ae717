"""N plain calls with short pauses between pairs, so the recorder commits several times mid-run.

Usage: python sequential_agent.py N
Two copies run at once under two ``rewind record`` processes into one repository.
"""

from __future__ import annotations

import sys
import time

from openai import OpenAI

client = OpenAI(api_key="sk-test-SECRET-0123456789", max_retries=0)
for i in range(int(sys.argv[1])):
    r = client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": f"shared question {i}"}])
    print(i, r.choices[0].message.content.splitlines()[-1], flush=True)
    if i % 2:
        time.sleep(0.8)  # longer than the recorder's idle flush: commits land while the other run writes
