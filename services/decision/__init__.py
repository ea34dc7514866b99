"""The decision service: DecisionService.Decide/DecideStream answers the switch within the budget.

``service`` serves Decide and runs the process; ``decider`` makes one decision (emergency and lists
first, then origination and reputation within sub-deadlines, then the model and policy);
``degraded`` names what a decision ran without; ``policy`` the per-tenant thresholds and actions;
``models`` hot-reloads the model artifact; ``lists`` the allow/deny entries; ``audit`` publishes the
audit record; ``admin`` the AdminService (lists, redress, Explain); ``settings``, ``metrics``.
"""
