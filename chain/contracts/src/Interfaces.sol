// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// What the contracts call on each other (the same functions as the real ones).

interface ILivepeerToken {
    function totalSupply() external view returns (uint256);

    function balanceOf(address _account) external view returns (uint256);

    function transfer(address _to, uint256 _amount) external returns (bool);

    function transferFrom(address _from, address _to, uint256 _amount) external returns (bool);

    function mint(address _to, uint256 _amount) external;

    function burn(uint256 _amount) external;
}

interface IMinter {
    function createReward(uint256 _fracNum, uint256 _fracDenom) external returns (uint256);

    function trustedTransferTokens(address _to, uint256 _amount) external;

    function trustedBurnTokens(uint256 _amount) external;

    function trustedWithdrawETH(address payable _to, uint256 _amount) external;

    function depositETH() external payable returns (bool);

    function setCurrentRewardTokens() external;

    function currentMintableTokens() external view returns (uint256);

    function currentMintedTokens() external view returns (uint256);
}

interface IRoundsManager {
    function currentRound() external view returns (uint256);

    function currentRoundInitialized() external view returns (bool);

    function currentRoundLocked() external view returns (bool);

    function blockHashForRound(uint256 _round) external view returns (bytes32);
}

interface IBondingManager {
    function updateTranscoderWithFees(address _transcoder, uint256 _fees, uint256 _round) external;

    function setCurrentRoundTotalActiveStake() external;

    function getTranscoderPoolSize() external view returns (uint256);

    function isActiveTranscoder(address _transcoder) external view returns (bool);

    function getTotalBonded() external view returns (uint256);
}

interface IManager {
    function setController(address _controller) external;
}
