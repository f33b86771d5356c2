-- wrk script: GET /v1/forward-auth as a gateway asks it: the original method and path in
-- X-Forwarded-Method / X-Forwarded-Uri, the end user's token in Authorization ($TOKEN, $URI).
wrk.method = "GET"
wrk.headers["X-Forwarded-Method"] = "GET"
wrk.headers["X-Forwarded-Uri"] = os.getenv("URI")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
