"use client";
// A personalized banner in React: segmint decides (the user's segment,
// the holdout, Promotion Viewed and Clicked) and React renders. The
// variants are functions that set state, so only React changes what is
// inside the wrapper. (A <template> slot does not suit JSX: React puts a
// template's children in the element rather than its content, and cannot
// hydrate a server-rendered one.)
import { useEffect, useRef, useState } from "react";
import { segmint } from "./segmint";

const banners = {
  "frequent-buyer": <a href="/vip">Free express shipping, always</a>,
  "bargain-hunter": <a href="/deals">Under $20 this week</a>,
  default: <a href="/new">New arrivals</a>,
};

export default function Banner() {
  const wrapper = useRef(null);
  const [shown, setShown] = useState(null);
  useEffect(() => {
    // Run again (StrictMode in development), personalize() takes the
    // earlier call's place: the banner is counted as viewed once.
    const variants = Object.fromEntries(Object.keys(banners).map((id) => [id, () => setShown(id)]));
    segmint().personalize(wrapper.current, variants);
  }, []);
  // The banner's height is kept, so nothing shifts when it appears.
  return (
    <div ref={wrapper} id="hero" style={{ minHeight: "1.5em" }}>
      {shown && banners[shown]}
    </div>
  );
}
