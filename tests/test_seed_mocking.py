"""The API document's own "Mocking Providers" example, as written there."""

from unittest.mock import patch

import pytest

from victor import Agent, AgentResponse


@pytest.mark.asyncio
async def test_agent_with_mock():
    # Mock provider response
    with patch('victor.providers.anthropic.AnthropicProvider.chat') as mock:
        mock.return_value = AgentResponse(
            content="Mocked response",
            tokens_used=10
        )

        agent = await Agent.create(provider="anthropic")
        result = await agent.run("Test")
        assert result == "Mocked response"
