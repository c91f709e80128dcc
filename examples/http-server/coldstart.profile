coldstart-profile 1
# needed  micros  kind    name
later     25227   static  http_server::CLIENT_POOL
needed    390     static  http_server::CONFIG
later     41445   async   http_server::warm_cache
