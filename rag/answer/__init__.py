"""The answer pipeline: understanding, a router, one stage per kind of turn, checks, finish.

    turn = understanding.understand(request)     # turn.py: a frozen TurnContext
    route = router.route(turn)                   # router.py
    draft = yield from stages[route].draft(turn) # stages/: a Draft (and the streamed tokens)
    verdicts = [check(turn, draft) for check in checks[route]]   # checks.py
    yield from finisher.finish(turn, draft, verdicts)            # finish.py: the Reply

pipeline.py wires them (AnswerPipeline); generation.py is the model call with its checks."""
