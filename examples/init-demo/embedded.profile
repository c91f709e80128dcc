coldstart-profile 1
# needed  micros  kind    name
later     900     static  init_demo::SHARED
later     10      fn      init_demo::library_warm_up
