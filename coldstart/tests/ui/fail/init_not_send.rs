// An async init whose future is not `Send` (an `Rc` held across an `.await`): said at
// the function's name, naming what is not `Send`.

#[coldstart::init(deferred)]
async fn warm() {
    let held = std::rc::Rc::new(1);
    std::future::ready(()).await;
    drop(held);
}

fn main() {}
