// The filter explorer's script: everything is computed here, in plain JavaScript, from the JSON payload in
// #explorer-data (filterlab.explorer.export). Arrays arrive as base64 little-endian float32; tensors are
// channels-last (height, width, channels) Float64Arrays, the layout Keras computes in.
"use strict";
(() => {
  const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  const SIDE = DATA.image_side;
  const PAD_SIDE = 280;
  const BOX = 20; // MNIST's digits were fitted in a 20x20 box, then centred by centre of mass in 28x28
  const byId = id => document.getElementById(id);

  // ---------- arrays and layers (the forward pass Keras runs, layer by layer)

  function decode(encoded) {
    const binary = atob(encoded.data);
    const view = new DataView(new ArrayBuffer(binary.length));
    for (let i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
    const values = new Float32Array(binary.length / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
    return {shape: encoded.shape, data: values};
  }

  // Output size and leading padding of one axis, as Keras (TensorFlow) computes them.
  function axis(size, window, stride, padding) {
    if (padding === "valid") return {size: Math.floor((size - window) / stride) + 1, before: 0};
    const out = Math.ceil(size / stride);
    return {size: out, before: Math.floor(Math.max((out - 1) * stride + window - size, 0) / 2)};
  }

  // Cross-correlation (Keras Conv2D) of an (h, w, cin) tensor with a (kh, kw, cin, cout) kernel, plus bias.
  function conv2d(input, kernel, kernelShape, bias, strides, padding) {
    const [kh, kw, cin, cout] = kernelShape;
    const rows = axis(input.h, kh, strides[0], padding), cols = axis(input.w, kw, strides[1], padding);
    const out = new Float64Array(rows.size * cols.size * cout);
    const sums = new Float64Array(cout);
    for (let oy = 0; oy < rows.size; oy++) {
      for (let ox = 0; ox < cols.size; ox++) {
        for (let co = 0; co < cout; co++) sums[co] = bias[co];
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * strides[0] + ky - rows.before;
          if (iy < 0 || iy >= input.h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * strides[1] + kx - cols.before;
            if (ix < 0 || ix >= input.w) continue;
            for (let ci = 0; ci < cin; ci++) {
              const value = input.data[(iy * input.w + ix) * cin + ci];
              if (value === 0) continue;
              const base = ((ky * kw + kx) * cin + ci) * cout;
              for (let co = 0; co < cout; co++) sums[co] += value * kernel[base + co];
            }
          }
        }
        out.set(sums, (oy * cols.size + ox) * cout);
      }
    }
    return {h: rows.size, w: cols.size, c: cout, data: out};
  }

  function relu(tensor) {
    return {...tensor, data: tensor.data.map(value => (value > 0 ? value : 0))};
  }

  function maxpool(input, pool, strides, padding) {
    const rows = axis(input.h, pool[0], strides[0], padding), cols = axis(input.w, pool[1], strides[1], padding);
    const out = new Float64Array(rows.size * cols.size * input.c);
    for (let oy = 0; oy < rows.size; oy++) {
      for (let ox = 0; ox < cols.size; ox++) {
        for (let c = 0; c < input.c; c++) {
          let best = -Infinity;
          for (let py = 0; py < pool[0]; py++) {
            const iy = oy * strides[0] + py - rows.before;
            if (iy < 0 || iy >= input.h) continue;
            for (let px = 0; px < pool[1]; px++) {
              const ix = ox * strides[1] + px - cols.before;
              if (ix >= 0 && ix < input.w) best = Math.max(best, input.data[(iy * input.w + ix) * input.c + c]);
            }
          }
          out[(oy * cols.size + ox) * input.c + c] = best;
        }
      }
    }
    return {h: rows.size, w: cols.size, c: input.c, data: out};
  }

  function dense(input, kernel, kernelShape, bias) {
    const [inputs, units] = kernelShape;
    const out = new Float64Array(units);
    for (let unit = 0; unit < units; unit++) out[unit] = bias[unit];
    for (let i = 0; i < inputs; i++) {
      const value = input.data[i];
      if (value === 0) continue;
      for (let unit = 0; unit < units; unit++) out[unit] += value * kernel[i * units + unit];
    }
    return {h: 1, w: 1, c: units, data: out};
  }

  function softmax(tensor) {
    const top = Math.max(...tensor.data);
    const exps = tensor.data.map(value => Math.exp(value - top));
    const total = exps.reduce((a, b) => a + b, 0);
    return {...tensor, data: exps.map(value => value / total)};
  }

  function activate(tensor, activation) {
    if (activation === "relu") return relu(tensor);
    if (activation === "softmax") return softmax(tensor);
    return tensor;
  }

  // Flatten is a no-op: the data already lies channels-last, the order Keras' Flatten reads it in.
  function forward(layers, pixels) {
    let tensor = {h: SIDE, w: SIDE, c: 1, data: pixels};
    for (const layer of layers) {
      if (layer.kind === "conv2d") {
        const out = conv2d(tensor, layer.kernel.data, layer.kernel.shape, layer.bias.data, layer.strides, layer.padding);
        tensor = activate(out, layer.activation);
      } else if (layer.kind === "dense") {
        tensor = activate(dense(tensor, layer.kernel.data, layer.kernel.shape, layer.bias.data), layer.activation);
      } else if (layer.kind === "relu") {
        tensor = relu(tensor);
      } else if (layer.kind === "maxpool") {
        tensor = maxpool(tensor, layer.pool, layer.strides, layer.padding);
      } else if (layer.kind === "flatten") {
        tensor = {h: 1, w: 1, c: tensor.data.length, data: tensor.data};
      } else {
        throw new Error(`unknown layer kind ${layer.kind}`);
      }
    }
    return Array.from(tensor.data);
  }

  // One map per filter of a (kh, kw, filters) kernel on the digit: (h*w) arrays, before any activation.
  function filterMaps(pixels, kernel, kh, kw, count, bias, strides, padding) {
    const out = conv2d({h: SIDE, w: SIDE, c: 1, data: pixels}, kernel, [kh, kw, 1, count], bias, strides, padding);
    const maps = [];
    for (let f = 0; f < count; f++) {
      const map = new Float64Array(out.h * out.w);
      for (let i = 0; i < map.length; i++) map[i] = out.data[i * count + f];
      maps.push(map);
    }
    return {h: out.h, w: out.w, maps};
  }

  // ---------- the variants, decoded when first shown

  const decoded = new Map();
  function variantData(index) {
    if (!decoded.has(index)) {
      const variant = DATA.variants[index];
      const snapshots = decode(variant.conv1.snapshots);
      const [epochs, kh, kw, filters] = snapshots.shape;
      const size = kh * kw * filters;
      const kernels = [];
      for (let e = 0; e < epochs; e++) kernels.push(snapshots.data.subarray(e * size, (e + 1) * size));
      // Per filter: its ±max|w| over every epoch (one scale through its evolution) and how far it moved per epoch.
      const scales = [], moves = [];
      for (let f = 0; f < filters; f++) {
        let peak = 0;
        const moved = [];
        for (let e = 0; e < epochs; e++) {
          let step = 0;
          for (let i = f; i < size; i += filters) {
            peak = Math.max(peak, Math.abs(kernels[e][i]));
            if (e > 0) step += (kernels[e][i] - kernels[e - 1][i]) ** 2;
          }
          if (e > 0) moved.push(Math.sqrt(step));
        }
        scales.push(peak || 1);
        moves.push(moved);
      }
      const classic = variant.classic.comparable ? DATA.classic[variant.kernel_size].map(c => decode(c.weights).data) : [];
      decoded.set(index, {
        variant, kh, kw, filters, kernels, scales, moves, classic,
        bias: decode(variant.conv1.bias).data,
        biasInit: variant.conv1.bias_init ? decode(variant.conv1.bias_init).data : null,
        layers: variant.layers.map(layer => (layer.kernel ? {...layer, kernel: decode(layer.kernel), bias: decode(layer.bias)} : layer)),
      });
    }
    return decoded.get(index);
  }

  const digits = decode(DATA.digits.pixels);
  const bank = {...DATA.bank, weights: decode(DATA.bank.weights)};

  // ---------- colours: the params' diverging colormap, centred at 0

  const COLOURS = DATA.colormap.colours.map(hex => [1, 3, 5].map(at => parseInt(hex.slice(at, at + 2), 16)));

  // Paint values (h*w) on a canvas of h x w pixels (CSS scales it up, pixelated): -limit..0..+limit.
  function paint(canvas, values, h, w, limit) {
    canvas.width = w;
    canvas.height = h;
    const context = canvas.getContext("2d");
    const image = context.createImageData(w, h);
    const top = COLOURS.length - 1;
    for (let i = 0; i < h * w; i++) {
      const t = limit > 0 ? Math.max(-1, Math.min(1, values[i] / limit)) : 0;
      const [r, g, b] = COLOURS[Math.round(((t + 1) / 2) * top)];
      image.data.set([r, g, b, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  function paintDigit(canvas, pixels) {
    canvas.width = SIDE;
    canvas.height = SIDE;
    const context = canvas.getContext("2d");
    const image = context.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const shade = 255 - Math.round(255 * Math.max(0, Math.min(1, pixels[i])));
      image.data.set([shade, shade, shade, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  const peak = values => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const fixed = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "–");
  const pct = value => `${(100 * value).toFixed(2)}%`;

  function paintMap(canvas, map, h, w, signed, label) {
    const shown = signed ? map : map.map(v => (v > 0 ? v : 0));
    const limit = peak(shown);
    paint(canvas, shown, h, w, limit || 1);
    canvas.title = `${label}: ${h}×${w}, colour scale ±${fixed(limit, 3)}`;
    return shown;
  }

  // ---------- the page's state and its views

  const state = {variant: 0, epoch: 0, digit: 0, pixels: null, drawn: false, signed: false, probabilities: null, shown: null};

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  }

  function figure(className, caption, label = caption) {
    const canvas = element("canvas", {class: `px ${className}`, role: "img", "aria-label": label});
    return {canvas, node: element("figure", {}, canvas, element("figcaption", {text: caption}))};
  }

  function kernelClassName(index) {
    return index === null ? "none (an all-zero filter)" : DATA.classic[currentData().variant.kernel_size][index].name;
  }

  const currentData = () => variantData(state.variant);

  function buildVariant() {
    const data = currentData(), variant = data.variant;
    const slider = byId("epoch");
    slider.max = String(data.kernels.length - 1);
    state.epoch = data.kernels.length - 1;
    slider.value = String(state.epoch);
    byId("variant-info").textContent =
      `${variant.filters} filters, ${variant.kernel_size}×${variant.kernel_size}, stride ${variant.stride} · ` +
      `test accuracy ${pct(variant.accuracy)} (95% ${pct(variant.ci95_low)}–${pct(variant.ci95_high)})`;
    const cards = byId("filter-cards");
    cards.replaceChildren();
    const chance = variant.classic.comparable ? variant.classic.chance : null;
    byId("chance-note").textContent = chance
      ? `Chance: the nearest-class similarity of random filters drawn like conv1's initialiser is ` +
        `${fixed(chance.mean)} on average (sd ${fixed(chance.sd)}, 95th percentile ${fixed(chance.p95)}).`
      : `No classic kernel of the bank is ${variant.kernel_size}×${variant.kernel_size}: nothing to compare with.`;
    data.cards = [];
    for (let f = 0; f < data.filters; f++) {
      const kernel = figure("kernel", "kernel", `filter ${f}'s kernel`);
      const map = figure("map", "feature map", `filter ${f}'s feature map on the digit`);
      const moves = data.moves[f];
      const spark = sparkline(moves);
      const card = element("article", {class: "card", "data-filter": String(f)},
        element("h3", {text: `filter ${f}`}),
        element("div", {class: "pair"}, kernel.node, map.node),
        element("div", {class: "moved"}, spark.svg, element("span", {class: "moved-text"})));
      const view = {kernel: kernel.canvas, map: map.canvas, spark, text: card.querySelector(".moved-text")};
      if (variant.classic.comparable) {
        const match = variant.classic.per_filter[f];
        const learned = match.learned, init = match.init;
        const above = learned.similarity > chance.p95 ? " above-chance" : "";
        const classicKernel = figure("kernel", "classic kernel", `the classic kernel nearest filter ${f}`);
        const classicMap = figure("map", "its feature map", `that classic kernel's feature map on the digit`);
        card.append(element("div", {class: `classic${above}`},
          element("p", {class: "match"},
            "nearest classic: ", element("strong", {text: kernelClassName(learned.class)}),
            element("br"), `similarity ${fixed(learned.similarity)} vs chance ${fixed(chance.mean)} (p95 ${fixed(chance.p95)})`),
          element("div", {class: "pair"}, classicKernel.node, classicMap.node),
          element("p", {class: "init", text: `at init: ${kernelClassName(init.class)} (${fixed(init.similarity)})`})));
        view.classicKernel = classicKernel.canvas;
        view.classicMap = classicMap.canvas;
        view.match = match;
      }
      cards.append(card);
      data.cards.push(view);
    }
  }

  // Bars: how far (L2) the filter moved in each epoch; the current epoch's bar is dark.
  function sparkline(moves) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    const width = 100, height = 22, top = Math.max(...moves, 1e-12), bar = width / Math.max(moves.length, 1);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("class", "spark");
    svg.setAttribute("role", "img");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-label", `moved per epoch: ${moves.map(m => fixed(m, 3)).join(", ")}`);
    const bars = moves.map((move, e) => {
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      const h = Math.max(1, (move / top) * (height - 2));
      rect.setAttribute("x", String(e * bar + 0.5));
      rect.setAttribute("y", String(height - h));
      rect.setAttribute("width", String(Math.max(bar - 1, 0.5)));
      rect.setAttribute("height", String(h));
      svg.append(rect);
      return rect;
    });
    return {svg, bars};
  }

  function biasAt(data, epoch) {
    const last = data.kernels.length - 1;
    if (epoch === 0 && data.biasInit) return {bias: data.biasInit, note: "conv1's bias at init: zeros."};
    if (epoch === last) return {bias: data.bias, note: "conv1's final bias."};
    return {bias: data.bias, note: "filters.npz keeps conv1's bias only after training: this epoch's maps use the final bias."};
  }

  // Everything that depends on the digit, the epoch or the ReLU switch; `withModel` also reruns the whole model.
  function render(withModel = true) {
    const data = currentData(), variant = data.variant, epoch = state.epoch;
    const last = data.kernels.length - 1;
    byId("epoch-label").textContent = epoch === 0 ? `init (0 of ${last})` : `${epoch} of ${last}`;
    const {bias, note} = biasAt(data, epoch);
    byId("bias-note").textContent = note;
    const conv1 = variant.conv1;
    const learned = filterMaps(state.pixels, data.kernels[epoch], data.kh, data.kw, data.filters, bias, conv1.strides, conv1.padding);
    const shown = {variant: variant.name, epoch, mapShape: [learned.h, learned.w], maps: [], classicMaps: [], bankMaps: []};
    data.cards.forEach((view, f) => {
      const kernel = new Float64Array(data.kh * data.kw);
      for (let i = 0; i < kernel.length; i++) kernel[i] = data.kernels[epoch][i * data.filters + f];
      paint(view.kernel, kernel, data.kh, data.kw, data.scales[f]);
      view.kernel.title = `filter ${f} at ${epoch === 0 ? "init" : `epoch ${epoch}`}: colour scale ±${fixed(data.scales[f], 3)} (its largest |w| over all epochs)`;
      shown.maps.push(Array.from(paintMap(view.map, learned.maps[f], learned.h, learned.w, state.signed, `filter ${f} feature map`)));
      view.spark.bars.forEach((bar, e) => bar.classList.toggle("current", e + 1 === epoch));
      const moves = data.moves[f];
      const largest = moves.indexOf(Math.max(...moves)) + 1;
      view.text.textContent = epoch > 0
        ? `moved ${fixed(moves[epoch - 1], 3)} in epoch ${epoch}; most in epoch ${largest}`
        : `moved most in epoch ${largest}`;
      const classIndex = view.match ? view.match.learned.class : null;
      if (classIndex === null) {
        shown.classicMaps.push(null);
      } else {
        const weights = data.classic[classIndex].map(w => w * view.match.sign);
        paint(view.classicKernel, weights, data.kh, data.kw, peak(weights) || 1);
        const classic = filterMaps(state.pixels, weights, data.kh, data.kw, 1, [0], conv1.strides, conv1.padding);
        shown.classicMaps.push(Array.from(paintMap(view.classicMap, classic.maps[0], classic.h, classic.w, state.signed, "classic feature map")));
      }
    });
    const [size, , count] = bank.weights.shape;
    const bankMaps = filterMaps(state.pixels, bank.weights.data, size, size, count, new Float64Array(count), [bank.stride, bank.stride], "valid");
    bankViews.forEach((view, k) => {
      shown.bankMaps.push(Array.from(paintMap(view.map, bankMaps.maps[k], bankMaps.h, bankMaps.w, state.signed, `${bank.names[k]} feature map`)));
    });
    if (withModel || !state.probabilities) state.probabilities = forward(data.layers, state.pixels);
    renderProbabilities(state.probabilities);
    paintDigit(byId("digit-now"), state.pixels);
    byId("digit-caption").textContent = state.drawn
      ? "your digit, as the model reads it (28×28)"
      : `test digit ${DATA.digits.indices[state.digit]} (a ${DATA.digits.labels[state.digit]})`;
    state.shown = shown;
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  }

  function renderProbabilities(probabilities) {
    const best = probabilities.indexOf(Math.max(...probabilities));
    byId("prediction").textContent = `The model says ${best} (${pct(probabilities[best])}).`;
    probabilities.forEach((p, digit) => {
      const row = probabilityRows[digit];
      row.bar.style.width = `${(100 * p).toFixed(1)}%`;
      row.value.textContent = pct(p);
      row.node.classList.toggle("best", digit === best);
    });
  }

  // ---------- building the static parts

  const variantSelect = byId("variant");
  DATA.variants.forEach((variant, index) => {
    variantSelect.append(element("option", {
      value: String(index),
      text: `${variant.name} · ${pct(variant.accuracy)} (${pct(variant.ci95_low)}–${pct(variant.ci95_high)})`,
    }));
  });

  const probabilityRows = [];
  for (let digit = 0; digit < DATA.classes; digit++) {
    const bar = element("span", {class: "fill"}), value = element("span", {class: "value"});
    const node = element("div", {class: "probability"}, element("span", {class: "label", text: String(digit)}),
      element("span", {class: "bar"}, bar), value);
    byId("probabilities").append(node);
    probabilityRows.push({node, bar, value});
  }

  const digitButtons = DATA.digits.labels.map((label, index) => {
    const canvas = element("canvas", {class: "px", width: String(SIDE), height: String(SIDE)});
    const button = element("button", {
      type: "button", role: "radio", "aria-checked": "false", tabindex: "-1",
      "aria-label": `test digit ${DATA.digits.indices[index]}, a ${label}`,
    }, canvas);
    paintDigit(canvas, digits.data.subarray(index * SIDE * SIDE, (index + 1) * SIDE * SIDE));
    button.addEventListener("click", () => selectDigit(index));
    byId("digits").append(button);
    return button;
  });

  const bankViews = bank.names.map((name, k) => {
    const [size, , count] = bank.weights.shape;
    const kernel = figure("kernel", name, `${name}, as the frozen conv1 holds it`);
    const map = figure("map", "feature map", `${name}'s feature map on the digit`);
    const weights = new Float64Array(size * size);
    for (let i = 0; i < weights.length; i++) weights[i] = bank.weights.data[i * count + k];
    paint(kernel.canvas, weights, size, size, peak(weights) || 1);
    kernel.canvas.title = bank.docs[k];
    byId("bank-cards").append(element("article", {class: "card"}, element("h3", {text: name}),
      element("div", {class: "pair"}, kernel.node, map.node)));
    return {map: map.canvas};
  });

  // The legend: the colormap from -max through 0 to +max.
  (() => {
    const canvas = byId("legend-bar");
    const values = Array.from({length: COLOURS.length}, (_, i) => (2 * i) / (COLOURS.length - 1) - 1);
    paint(canvas, values, 1, values.length, 1);
    byId("legend-name").textContent = DATA.colormap.name;
  })();

  // ---------- interaction

  function selectVariant(index) {
    state.variant = index;
    variantSelect.value = String(index);
    buildVariant();
    render(true);
  }

  function chooseDigit(index) {
    state.digit = index;
    state.drawn = false;
    state.pixels = Float64Array.from(digits.data.subarray(index * SIDE * SIDE, (index + 1) * SIDE * SIDE));
    digitButtons.forEach((button, i) => {
      button.setAttribute("aria-checked", String(i === index));
      button.tabIndex = i === index ? 0 : -1;
    });
  }

  function selectDigit(index, focus = false) {
    chooseDigit(index);
    if (focus) digitButtons[index].focus();
    render(true);
  }

  function setEpoch(epoch) {
    state.epoch = Math.max(0, Math.min(Number(byId("epoch").max), epoch));
    byId("epoch").value = String(state.epoch);
    render(false);
  }

  variantSelect.addEventListener("change", () => selectVariant(Number(variantSelect.value)));
  byId("epoch").addEventListener("input", event => setEpoch(Number(event.target.value)));
  byId("signed").addEventListener("change", event => {
    state.signed = event.target.checked;
    render(false);
  });
  // The digits are one radio group: one tab stop, arrows move (a row is 10 digits), Home and End jump.
  byId("digits").addEventListener("keydown", event => {
    const steps = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: 10, ArrowUp: -10};
    const count = digitButtons.length;
    let next = null;
    if (event.key in steps) next = Math.max(0, Math.min(count - 1, state.digit + steps[event.key]));
    if (event.key === "Home") next = 0;
    if (event.key === "End") next = count - 1;
    if (next === null) return;
    event.preventDefault();
    selectDigit(next, true);
  });

  // ---------- drawing: strokes on a 280x280 pad, preprocessed the way MNIST's digits were

  const pad = byId("pad");
  pad.width = PAD_SIDE;
  pad.height = PAD_SIDE;
  const ink = pad.getContext("2d", {willReadFrequently: true});
  let stroke = null, pending = false;

  function padPoint(event) {
    const box = pad.getBoundingClientRect();
    return [((event.clientX - box.left) * PAD_SIDE) / box.width, ((event.clientY - box.top) * PAD_SIDE) / box.height];
  }

  function line(from, to) {
    ink.lineWidth = 20;
    ink.lineCap = "round";
    ink.lineJoin = "round";
    ink.strokeStyle = "#000";
    ink.beginPath();
    ink.moveTo(...from);
    ink.lineTo(...to);
    ink.stroke();
  }

  pad.addEventListener("pointerdown", event => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    stroke = padPoint(event);
    line(stroke, stroke);
    scheduleDrawn();
  });
  pad.addEventListener("pointermove", event => {
    if (stroke === null) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) {
      const point = padPoint(each);
      line(stroke, point);
      stroke = point;
    }
    scheduleDrawn();
  });
  const endStroke = () => {
    if (stroke === null) return;
    stroke = null;
    useDrawn();
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  byId("clear").addEventListener("click", () => {
    ink.clearRect(0, 0, PAD_SIDE, PAD_SIDE);
    selectDigit(state.digit);
  });

  function scheduleDrawn() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      useDrawn();
    });
  }

  function useDrawn() {
    const alpha = ink.getImageData(0, 0, PAD_SIDE, PAD_SIDE).data;
    const intensity = new Float64Array(PAD_SIDE * PAD_SIDE);
    for (let i = 0; i < intensity.length; i++) intensity[i] = alpha[4 * i + 3] / 255;
    const pixels = preprocess(intensity, PAD_SIDE);
    if (pixels === null) return;
    state.pixels = pixels;
    state.drawn = true;
    digitButtons.forEach(button => button.setAttribute("aria-checked", "false"));
    render(true);
  }

  // Area-average weights from n source cells onto m target cells: target j covers [j n/m, (j+1) n/m).
  function areaWeights(n, m) {
    const ratio = n / m, rows = [];
    for (let j = 0; j < m; j++) {
      const start = j * ratio, end = (j + 1) * ratio, row = [];
      for (let i = Math.floor(start); i < Math.min(n, Math.ceil(end)); i++) {
        const overlap = Math.min(end, i + 1) - Math.max(start, i);
        if (overlap > 0) row.push([i, overlap / ratio]);
      }
      rows.push(row);
    }
    return rows;
  }

  // A square intensity image (side x side, ink in [0, 1]) -> 28x28: the ink's bounding box scaled to fit a
  // 20x20 box (aspect kept, area-averaged), then placed so its centre of mass is the image's centre.
  // Values are rounded to float32, so the model here and Keras read the same numbers.
  function preprocess(intensity, side) {
    let top = side, bottom = -1, left = side, right = -1;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        if (intensity[y * side + x] > 0) {
          top = Math.min(top, y); bottom = Math.max(bottom, y);
          left = Math.min(left, x); right = Math.max(right, x);
        }
      }
    }
    if (bottom < 0) return null;
    const height = bottom - top + 1, width = right - left + 1;
    const scale = BOX / Math.max(height, width);
    const rows = Math.max(1, Math.min(BOX, Math.round(height * scale)));
    const cols = Math.max(1, Math.min(BOX, Math.round(width * scale)));
    const along = areaWeights(height, rows), across = areaWeights(width, cols);
    const patch = new Float64Array(rows * cols);
    let mass = 0, massY = 0, massX = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        let sum = 0;
        for (const [y, wy] of along[r]) for (const [x, wx] of across[c]) sum += wy * wx * intensity[(top + y) * side + left + x];
        patch[r * cols + c] = sum;
        mass += sum;
        massY += sum * (r + 0.5);
        massX += sum * (c + 0.5);
      }
    }
    const offsetY = Math.round(SIDE / 2 - massY / mass), offsetX = Math.round(SIDE / 2 - massX / mass);
    const pixels = new Float64Array(SIDE * SIDE);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const y = r + offsetY, x = c + offsetX;
        if (y >= 0 && y < SIDE && x >= 0 && x < SIDE) pixels[y * SIDE + x] = Math.fround(Math.min(1, patch[r * cols + c]));
      }
    }
    return pixels;
  }

  // ---------- start, and the page's scripting interface (tests and the benchmark drive it)

  chooseDigit(0);
  selectVariant(0);

  window.explorer = {
    variants: DATA.variants.map(variant => variant.name),
    selectVariant: name => selectVariant(DATA.variants.findIndex(variant => variant.name === name)),
    selectDigit: index => selectDigit(index),
    setEpoch,
    setSigned: signed => {
      byId("signed").checked = signed;
      state.signed = signed;
      render(false);
    },
    preprocess: (intensity, side) => Array.from(preprocess(Float64Array.from(intensity), side)),
    // What the page shows now: the digit it reads, the model's probabilities, and every map (ReLU applied
    // unless the before-ReLU switch is on).
    state: () => ({
      ...state.shown,
      signed: state.signed,
      digit: state.drawn ? null : state.digit,
      drawn: state.drawn,
      pixels: Array.from(state.pixels),
      probabilities: state.probabilities.slice(),
    }),
  };
  document.body.dataset.ready = "true";
  performance.mark("explorer-interactive");
})();
