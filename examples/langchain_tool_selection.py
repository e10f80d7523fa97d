"""Tool preselection for create_agent: 50 tools, only the relevant few reach the model.

SemRouterToolSelectorMiddleware is the embedding twin of LLMToolSelectorMiddleware: same
max_tools / always_include, no LLM call. Tools are indexed once (name, description, arguments
and optional examples); each model call only encodes the last human message. A fake
tool-calling chat model records which tools it was offered, so this runs offline as it stands.

    python examples/langchain_tool_selection.py
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import Field

from langchain_semrouter import SemRouterToolSelector, SemRouterToolSelectorMiddleware
from semrouter import LocalEncoder

SPECS = {
    "get_weather": "Current weather and forecast for a city.",
    "get_stock_price": "Latest share price of a listed company.",
    "book_flight": "Book a plane ticket between two airports.",
    "book_hotel": "Reserve a hotel room for given dates.",
    "find_recipe": "Find cooking recipes for a dish or ingredient.",
    "movie_showtimes": "Cinema showtimes for a film near you.",
    "play_music": "Play a song, album or playlist.",
    "football_scores": "Live football match scores and results.",
    "news_headlines": "Top news headlines on a topic.",
    "create_calendar_event": "Add a meeting or appointment to the calendar.",
    "send_email": "Send an email to a contact.",
    "translate_text": "Translate text between languages.",
    "define_word": "Dictionary definition of a word.",
    "convert_currency": "Convert an amount between currencies.",
    "estimate_taxes": "Estimate income tax owed.",
    "mortgage_calculator": "Monthly payment for a home loan.",
    "insurance_quote": "Quote for car or home insurance.",
    "find_pharmacy": "Nearest open pharmacy.",
    "book_doctor": "Book an appointment with a doctor.",
    "gym_classes": "Timetable of gym and fitness classes.",
    "plant_care": "How to water and care for a house plant.",
    "find_plumber": "Find a plumber for a leak or blocked drain.",
    "parking_spots": "Free parking spaces nearby.",
    "train_times": "Train departures and delays.",
    "bus_routes": "Bus lines and stops between two places.",
    "call_taxi": "Order a taxi to an address.",
    "bike_rental": "Rent a bicycle nearby.",
    "museum_hours": "Opening hours and tickets of a museum.",
    "concert_tickets": "Buy tickets for a concert.",
    "restaurant_booking": "Reserve a table at a restaurant.",
    "grocery_order": "Order groceries for home delivery.",
    "laundry_pickup": "Schedule a laundry pickup.",
    "vet_appointment": "Book a vet visit for a pet.",
    "find_babysitter": "Find a babysitter for tonight.",
    "math_tutor": "Explain a math problem step by step.",
    "library_search": "Search the library catalogue for a book.",
    "podcast_search": "Find podcast episodes on a subject.",
    "photo_editor": "Crop, resize or filter a photo.",
    "print_document": "Send a document to the printer.",
    "track_parcel": "Track a parcel shipment.",
    "reset_password": "Reset a forgotten account password.",
    "backup_files": "Back up files to cloud storage.",
    "set_alarm": "Set an alarm or timer.",
    "unit_converter": "Convert units such as miles to kilometres.",
    "wikipedia_lookup": "Look up an encyclopedia article.",
    "calculator": "Evaluate an arithmetic expression.",
    "sports_news": "Latest sports news.",
    "traffic_report": "Road traffic and jams on a route.",
    "air_quality": "Air pollution index for a city.",
    "time_zone": "Current time in another time zone.",
}


def make_tool(name: str, description: str) -> BaseTool:
    def run(query: str) -> str:
        return f"{name}({query!r}) -> ok"

    return StructuredTool.from_function(run, name=name, description=description)


class RecordingModel(GenericFakeChatModel):
    """A fake tool-calling model that records the tools it is offered."""

    offered: list[list[str]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.offered.append([t["name"] if isinstance(t, dict) else t.name for t in tools])
        return self


def main() -> None:
    tools = [make_tool(name, description) for name, description in SPECS.items()]
    encoder = LocalEncoder()
    start = time.perf_counter()
    middleware = SemRouterToolSelectorMiddleware.from_tools(
        tools,
        encoder=encoder,
        max_tools=3,
        always_include=["wikipedia_lookup"],
        examples={"get_weather": ["do I need an umbrella", "is it going to be hot"]},
    )
    print(f"indexed {len(tools)} tools in {(time.perf_counter() - start) * 1000:.0f} ms")

    queries = {
        "Do I need an umbrella in Lisbon tomorrow?": "get_weather",
        "Get me a flight from Paris to Rome on Friday": "book_flight",
        "My dog is limping, can someone see him?": "vet_appointment",
        "Where is my package?": "track_parcel",
    }
    for query, tool_name in queries.items():
        call = {"name": tool_name, "args": {"query": query}, "id": "call-1", "type": "tool_call"}
        model = RecordingModel(
            messages=iter([AIMessage("", tool_calls=[call]), AIMessage("Done.")])
        )
        agent = create_agent(model, tools=tools, middleware=[middleware])
        result = agent.invoke({"messages": [HumanMessage(query)]})
        print(f"\n{query!r}")
        print(f"  model offered {len(model.offered[0])}/{len(tools)} tools: {model.offered[0]}")
        print(f"  agent called {tool_name}: {result['messages'][2].content}")

    print("\nWithout create_agent (LangGraph users who bind_tools themselves):")
    # Same index, no re-encoding: a second selector over the middleware's tool index.
    selector = SemRouterToolSelector(middleware.selector.tool_index, max_tools=2)
    picked = selector.select("convert 10 miles to km", tools)
    print(f"  select('convert 10 miles to km') -> {[t.name for t in picked]}")
    pick = selector.as_runnable(tools)
    names = [t.name for t in pick.invoke([HumanMessage("what's the time in Tokyo")])]
    print(f"  as_runnable(...).invoke(messages) -> {names}")
    for match in selector.rank("convert 10 miles to km", tools, limit=3):
        print(f"  rank: {match.rank}. {match.name} (similarity {match.similarity:.2f})")


if __name__ == "__main__":
    main()
