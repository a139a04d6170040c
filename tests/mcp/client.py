"""Drives `provision mcp` with the official Python MCP SDK, as an agent's
client would, and prints what each step returned as one JSON object.

Usage: client.py PROVISION REPO
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(provision: str, repo: str) -> dict:
    server = StdioServerParameters(command=provision, args=["mcp"], cwd=repo)
    out: dict = {}
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = init.server_info.name
            tools = await session.list_tools()
            out["tools"] = {t.name: t.input_schema for t in tools.tools}

            async def call(name: str, args: dict) -> dict:
                result = await session.call_tool(name, args)
                return {"error": bool(result.is_error), "result": result.structured_content}

            out["new"] = await call("new", {"name": "feat"})
            worktree = out["new"]["result"]["path"]
            out["env"] = await call("env", {"directory": worktree})
            out["verify"] = await call("verify", {"directory": worktree})
            out["db_reset"] = await call("db_reset", {"directory": worktree})
            out["status"] = await call("status", {})
            out["bad"] = await call("new", {"name": "bad..name"})
            out["elsewhere"] = await call("status", {"directory": "/"})
            out["remove"] = await call("remove", {"name": "feat"})
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
