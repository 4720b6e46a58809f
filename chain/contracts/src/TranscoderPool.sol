// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// The transcoder pool: a doubly linked list of addresses sorted by stake, descending, with a
/// maximum size. Same ordering as the real SortedDoublyLL (a new node goes before nodes with an
/// equal key); insertion searches linearly from the head, so position hints are not needed.
library TranscoderPool {
    struct Node {
        uint256 key;
        address next;
        address prev;
    }

    struct Data {
        address head;
        address tail;
        uint256 maxSize;
        uint256 size;
        mapping(address => Node) nodes;
    }

    function setMaxSize(Data storage self, uint256 _size) internal {
        require(_size > self.maxSize, "new max size must be greater than old max size");
        self.maxSize = _size;
    }

    function insert(Data storage self, address _id, uint256 _key) internal {
        require(!isFull(self), "list is full");
        require(!contains(self, _id), "node already in list");
        require(_id != address(0), "id is null");
        require(_key > 0, "key is zero");

        address prev = address(0);
        address next = self.head;
        while (next != address(0) && self.nodes[next].key > _key) {
            prev = next;
            next = self.nodes[next].next;
        }

        self.nodes[_id] = Node(_key, next, prev);
        if (prev == address(0)) {
            self.head = _id;
        } else {
            self.nodes[prev].next = _id;
        }
        if (next == address(0)) {
            self.tail = _id;
        } else {
            self.nodes[next].prev = _id;
        }
        self.size += 1;
    }

    function remove(Data storage self, address _id) internal {
        require(contains(self, _id), "node not in list");
        Node storage node = self.nodes[_id];
        if (node.prev == address(0)) {
            self.head = node.next;
        } else {
            self.nodes[node.prev].next = node.next;
        }
        if (node.next == address(0)) {
            self.tail = node.prev;
        } else {
            self.nodes[node.next].prev = node.prev;
        }
        delete self.nodes[_id];
        self.size -= 1;
    }

    /// Moves `_id` to the position of its new key (removes it when the key is 0).
    function updateKey(Data storage self, address _id, uint256 _newKey) internal {
        remove(self, _id);
        if (_newKey > 0) {
            insert(self, _id, _newKey);
        }
    }

    function contains(Data storage self, address _id) internal view returns (bool) {
        return self.nodes[_id].key > 0;
    }

    function isFull(Data storage self) internal view returns (bool) {
        return self.size == self.maxSize;
    }

    function getNext(Data storage self, address _id) internal view returns (address) {
        return self.nodes[_id].next;
    }
}
